// Entrypoint of every segflow function. faas-cli (through the Dockerfile)
// and the local runtime both build this file with the function's package in
// place of "handler/function", so a function only writes Handle.
package main

import (
	function "handler/function"

	"github.com/segflow/segflow/shared/fnserve"
)

func main() {
	fnserve.Main(function.Handle)
}
