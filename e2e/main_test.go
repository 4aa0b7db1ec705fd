package e2e

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// TestMain runs up to four tests per CPU at once on SQLite unless -parallel says otherwise: an end-to-end test
// spends much of its time waiting on its server, its database or a clock, so GOMAXPROCS (go test's default) leaves
// the CPUs idle. With LATCHKEY_TEST_POSTGRES_URL set, two per CPU: every PostgreSQL test's servers hold pools of up
// to 20 connections; four tests per CPU exhaust the server's max_connections (100), three per CPU peaked at 52
// connections on two CPUs.
//
// Its servers and commands run in this process, so new password hashes here are cheap
// (models.CheapPasswordHashesForTests): under the race detector an OWASP-strength argon2id costs 126 ms of CPU, and
// the suite makes thousands (sign-ups, sign-ins, password changes); with them, and one test per CPU on PostgreSQL,
// it outgrew CI's 18 minutes; cheap hashes and two per CPU ran it in 9 (race detector on, both databases). What a
// hash's cost protects is tested in models; the binary tests (binary_test.go) run the real binary, at full cost.
func TestMain(m *testing.M) {
	models.CheapPasswordHashesForTests()
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		perCPU := 4
		if os.Getenv("LATCHKEY_TEST_POSTGRES_URL") != "" {
			perCPU = 2
		}
		if err := flag.Set("test.parallel", strconv.Itoa(perCPU*runtime.GOMAXPROCS(0))); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
