package export

import (
	"bytes"
	"sort"
)

// canonicalHTML sorts the attributes of every start tag. go-app writes
// attributes in map order, so two exports of the same page differ; sorted,
// the committed static/ files change only when the page does.
//
// It reads only what go-app's encoder writes: text is HTML-escaped (no raw
// '<'), attribute values are Go-quoted strings, and pages carry no inline
// scripts. Anything it does not recognise is copied unchanged.
func canonicalHTML(in []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(in))
	for i := 0; i < len(in); {
		if in[i] != '<' || i+1 >= len(in) || !isLetter(in[i+1]) {
			out.WriteByte(in[i])
			i++
			continue
		}
		end, name, attrs, ok := parseTag(in, i)
		if !ok {
			out.WriteByte(in[i])
			i++
			continue
		}
		sort.SliceStable(attrs, func(a, b int) bool { return attrName(attrs[a]) < attrName(attrs[b]) })
		out.WriteByte('<')
		out.Write(name)
		for _, a := range attrs {
			out.WriteByte(' ')
			out.Write(a)
		}
		out.WriteByte('>')
		i = end
	}
	return out.Bytes()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func attrName(a []byte) string {
	if i := bytes.IndexByte(a, '='); i >= 0 {
		return string(a[:i])
	}
	return string(a)
}

// parseTag reads `<name a="v" b>` starting at in[i] and returns the index
// after '>', the name and the attributes as written.
func parseTag(in []byte, i int) (end int, name []byte, attrs [][]byte, ok bool) {
	j := i + 1
	for j < len(in) && in[j] != ' ' && in[j] != '>' {
		j++
	}
	name = in[i+1 : j]
	for j < len(in) {
		for j < len(in) && in[j] == ' ' {
			j++
		}
		if j >= len(in) {
			return 0, nil, nil, false
		}
		if in[j] == '>' {
			return j + 1, name, attrs, true
		}
		start := j
		for j < len(in) && in[j] != '=' && in[j] != ' ' && in[j] != '>' {
			j++
		}
		if j < len(in) && in[j] == '=' {
			j++
			if j >= len(in) || in[j] != '"' {
				return 0, nil, nil, false
			}
			j++
			for j < len(in) && in[j] != '"' {
				if in[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(in) {
				return 0, nil, nil, false
			}
			j++ // closing quote
		}
		attrs = append(attrs, in[start:j])
	}
	return 0, nil, nil, false
}
