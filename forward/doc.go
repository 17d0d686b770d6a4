// Package forward carries classified alerts from the receivers to the outputs.
//
// Frames are copied once, into a Block owned by the caller's Producer, when
// they enter the pipeline. A Producer publishes its Block at the end of each
// read (not per message), to every output queue; each output runs one
// batcher goroutine that encodes its records with an Encoder and delivers
// batches with a Sender (the seams in seams.go; package output implements
// them for each output type), retrying with capped, jittered exponential backoff
// (smaller requests after a timeout). What an operator can fix (a rejected
// key, a wrong url) is retried with the output reported down; an event the
// intake refuses for its content, or too large for the output, goes to the
// output's dead-letter file (reject.go, deadletter.go), from which Replay
// sends it again.
// Queues are bounded in bytes: when one is full, Producer.Flush blocks, which
// stops the event loop reading and closes the senders' TCP windows.
package forward
