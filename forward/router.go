package forward

import (
	"fmt"

	"github.com/dtrelay/dtrelay/parser"
)

// MaxOutputs is the most outputs a pipeline can have: a record's routing is
// a bit mask.
const MaxOutputs = 64

// RouteSpec is one entry of the configuration's routes, with names already
// resolved to indexes. An empty Kinds or Inputs matches all.
type RouteSpec struct {
	Kinds       []parser.Kind
	MinPriority parser.Priority
	Inputs      []int
	Outputs     []int
}

type route struct {
	kinds   uint32 // bit per parser.Kind; all ones = any
	minPrio parser.Priority
	inputs  uint64 // bit per input index; all ones = any
	outputs uint64
}

// Router decides which outputs a record goes to. It is immutable after
// construction and safe for concurrent use.
type Router struct {
	routes  []route
	all     uint64 // every output
	notJSON uint64 // outputs that carry non-JSON messages (syslog, format original)
}

// NewRouter builds a Router for nOutputs outputs. notJSON lists the outputs
// that accept messages whose payload is not JSON. Without routes every
// record goes to every output.
func NewRouter(nOutputs int, routes []RouteSpec, notJSON []int) (*Router, error) {
	if nOutputs > MaxOutputs {
		return nil, fmt.Errorf("forward: at most %d outputs, have %d", MaxOutputs, nOutputs)
	}
	r := &Router{all: 1<<uint(nOutputs) - 1}
	if nOutputs == MaxOutputs {
		r.all = ^uint64(0)
	}
	for _, i := range notJSON {
		r.notJSON |= 1 << uint(i)
	}
	for _, rs := range routes {
		rt := route{kinds: ^uint32(0), minPrio: rs.MinPriority, inputs: ^uint64(0)}
		if len(rs.Kinds) > 0 {
			rt.kinds = 0
			for _, k := range rs.Kinds {
				rt.kinds |= 1 << uint(k)
			}
		}
		if len(rs.Inputs) > 0 {
			rt.inputs = 0
			for _, i := range rs.Inputs {
				if i < 0 || i >= 64 {
					return nil, fmt.Errorf("forward: route input index %d out of range", i)
				}
				rt.inputs |= 1 << uint(i)
			}
		}
		for _, o := range rs.Outputs {
			if o < 0 || o >= nOutputs {
				return nil, fmt.Errorf("forward: route output index %d out of range", o)
			}
			rt.outputs |= 1 << uint(o)
		}
		r.routes = append(r.routes, rt)
	}
	return r, nil
}

// Route returns the mask of outputs a record goes to; 0 means none.
func (r *Router) Route(kind parser.Kind, prio parser.Priority, input int, notJSON bool) uint64 {
	mask := r.all
	if len(r.routes) > 0 {
		mask = 0
		for i := range r.routes {
			rt := &r.routes[i]
			if rt.kinds&(1<<uint(kind)) != 0 && prio >= rt.minPrio && rt.inputs&(1<<uint(input&63)) != 0 {
				mask |= rt.outputs
			}
		}
	}
	if notJSON {
		mask &= r.notJSON
	}
	return mask
}
