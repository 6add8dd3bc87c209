package capacity

import (
	"fmt"
	"strings"
)

// The markers around the generated section in a document.
const (
	Begin = "<!-- capacity:begin -->"
	End   = "<!-- capacity:end -->"
)

// Section is the generated text between the markers of doc.
func Section(doc string) (string, error) {
	_, rest, ok := strings.Cut(doc, Begin+"\n")
	if !ok {
		return "", fmt.Errorf("capacity: no %q line", Begin)
	}
	section, _, ok := strings.Cut(rest, End)
	if !ok {
		return "", fmt.Errorf("capacity: no %q after %q", End, Begin)
	}
	return section, nil
}

// Replace puts section between the markers of doc.
func Replace(doc, section string) (string, error) {
	old, err := Section(doc)
	if err != nil {
		return "", err
	}
	return strings.Replace(doc, Begin+"\n"+old+End, Begin+"\n"+section+End, 1), nil
}
