// Package e2e holds pullnet's end-to-end tests: they build the real pulld
// and peerctl binaries and run several daemon processes on 127.0.0.1, driven
// through the CLI as a user would (e2e_test.go), and the CLI behaviour
// scripts in testdata/script, run by testscript (script_test.go).
package e2e
