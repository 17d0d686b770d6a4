package parser

import "strconv"

// Fields are the string fields of an alert that routes match on (the
// model name and category) and the identity that de-duplication keys on;
// ClassifyFields fills them. Their bytes are copies held by the Fields
// (unescaped), reused from one call to the next: a Fields in steady state
// allocates nothing. Only the routes that ask for these fields pay for them.
type Fields struct {
	// Model is the model name of a model breach or test alert ("name" of
	// model.now, else model.then, else model); empty otherwise.
	Model []byte
	// Category is the model's "category" for a model breach or test alert
	// ("Critical", "Suspicious", "Compliance", "Informational"), the
	// top-level "category" otherwise (AI Analyst: "critical", "suspicious",
	// ...); empty when absent.
	Category []byte
	// Identity says which Darktrace event this is, so that two sends of one
	// event compare equal: "mb:PBID:TIME:MODEL" for a model breach (or test
	// alert; a syslog payload names no instance, so the breach's time and
	// model stand in for it), "aia:ID:CURRENTGROUP" for an AI Analyst
	// event; empty when the kind has none or its fields are missing (the
	// caller then keys on a hash of the payload).
	Identity []byte
}

// ClassifyFields is Classify that also fills f (see Fields). On error f's
// slices are empty.
func (c *Classifier) ClassifyFields(payload, app []byte, a *Alert, f *Fields) error {
	f.Model, f.Category, f.Identity = f.Model[:0], f.Category[:0], f.Identity[:0]
	err := c.classify(payload, app, a, nil)
	if err != nil {
		return err
	}
	c.r.b = payload
	c.fillFields(a.Kind, f)
	c.r.b = nil
	return nil
}

// fillFields reads f's fields for a payload that fill classified as kind.
func (c *Classifier) fillFields(kind Kind, f *Fields) {
	fl, r := &c.f, &c.r
	switch kind {
	case KindModelBreach, KindTest:
		m := fl.effectiveModel()
		f.Model = append(f.Model, r.stringText(m.name)...)
		f.Category = append(f.Category, r.stringText(m.category)...)
		if pbid := r.text(fl.pbid); isUint(pbid) { // a number or a numeric string
			f.Identity = append(f.Identity, "mb:"...)
			f.Identity = append(f.Identity, pbid...)
			f.Identity = append(f.Identity, ':')
			f.Identity = strconv.AppendInt(f.Identity, r.firstTime(fl.time, fl.creationTime, jsonValue{}), 10)
			f.Identity = append(f.Identity, ':')
			f.Identity = append(f.Identity, f.Model...)
		}
	default:
		f.Category = append(f.Category, r.stringText(fl.category)...)
		if kind == KindAIAnalyst && fl.id.typ != typeNone {
			if id := r.text(fl.id); len(id) > 0 {
				f.Identity = append(f.Identity, "aia:"...)
				f.Identity = append(f.Identity, id...)
				f.Identity = append(f.Identity, ':')
				f.Identity = append(f.Identity, r.text(fl.currentGroup)...)
			}
		}
	}
}

// stringText is text for strings only: nil for any other value.
func (r *valueReader) stringText(v jsonValue) []byte {
	if v.typ != typeString {
		return nil
	}
	return r.text(v)
}
