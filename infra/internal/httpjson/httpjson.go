// Package httpjson is the JSON side of segflow's HTTP handlers: writing a
// value or an error, and reading a small request body.
package httpjson

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Write sends v as JSON with the status code.
func Write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Error sends {"error": "..."} with the status code.
func Error(w http.ResponseWriter, code int, err error) {
	Write(w, code, map[string]string{"error": err.Error()})
}

// Read decodes a request body of at most limit bytes into v; on failure it
// answers 400 with what (the request's name) and the reason, and returns
// false.
func Read(w http.ResponseWriter, r *http.Request, limit int64, what string, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v); err != nil {
		Error(w, http.StatusBadRequest, fmt.Errorf("%s: %w", what, err))
		return false
	}
	return true
}
