package config

import (
	"fmt"
	"sort"
	"strings"
)

// validateSpoolRename checks each {old: new} of spool.rename: new is an
// output, old is not one any more, and no output takes two backlogs.
func (d *decoder) validateSpoolRename(c *Config) {
	outputs := map[string]bool{}
	for _, o := range c.Outputs {
		outputs[o.Name] = true
	}
	olds := make([]string, 0, len(c.Spool.Rename))
	for old := range c.Spool.Rename {
		olds = append(olds, old)
	}
	sort.Slice(olds, func(i, j int) bool { // in file order: the later one is reported
		return d.line(join("spool.rename", olds[i])) < d.line(join("spool.rename", olds[j]))
	})
	taken := map[string]string{}
	for _, old := range olds {
		nw, p := c.Spool.Rename[old], join("spool.rename", old)
		switch {
		case !validName(old):
			d.problemf(p, "%s is not an output name", quote(old))
		case outputs[old]:
			d.problemf(p, "%s is still an output: only the backlog of a name no output has any more can be handed over", quote(old))
		case !outputs[nw]:
			d.problemf(p, "%s is not an output (want the new name of output %s)", quote(nw), quote(old))
		case taken[nw] != "":
			d.problemf(p, "output %s already takes over the backlog of %s; one backlog per output", quote(nw), quote(taken[nw]))
		default:
			taken[nw] = old
		}
	}
}

// renameSummary describes spool.rename for Summary; "" when empty.
func renameSummary(r map[string]string) string {
	if len(r) == 0 {
		return ""
	}
	parts := make([]string, 0, len(r))
	for old, nw := range r {
		parts = append(parts, fmt.Sprintf("%s -> %s", old, nw))
	}
	sort.Strings(parts)
	return ", backlog renamed: " + strings.Join(parts, ", ")
}
