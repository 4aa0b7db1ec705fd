package e2e

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// TestMain runs up to four tests per CPU at once on SQLite unless -parallel says otherwise: an end-to-end test
// spends much of its time waiting on its server, its database or a clock, so GOMAXPROCS (go test's default) leaves
// the CPUs idle. With LATCHKEY_TEST_POSTGRES_URL set it keeps go test's default: every PostgreSQL test's servers
// hold pools of up to 20 connections, and four tests per CPU exhaust the server's max_connections (100).
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set && os.Getenv("LATCHKEY_TEST_POSTGRES_URL") == "" {
		if err := flag.Set("test.parallel", strconv.Itoa(4*runtime.GOMAXPROCS(0))); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
