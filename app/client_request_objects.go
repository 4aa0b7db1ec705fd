package app

import (
	"flag"

	"github.com/latchkey/latchkey/models"
)

// requestObjectFlags are a client's signed request object settings (RFC 9101): --require-signed-request-object
// and --request-object-signing-alg. Unset means not given; on update, --request-object-signing-alg - clears the
// alg. Whether they are usable is the client's rule (models.Client.Validate).
type requestObjectFlags struct {
	require optionalBool
	alg     string
}

func (r *requestObjectFlags) register(fs *flag.FlagSet, create bool) {
	algHelp := "the one algorithm its request objects are signed with (default: any of RS/PS/ES 256/384/512 its keys fit; never none)"
	if !create {
		algHelp += " (\"-\": any)"
	}
	fs.Var(&r.require, "require-signed-request-object", "every authorization request must come as a request object signed with the client's keys (--jwks), by value or pushed with PAR")
	fs.StringVar(&r.alg, "request-object-signing-alg", "", algHelp)
}

// apply copies the given settings onto the client.
func (r requestObjectFlags) apply(cl *models.Client) {
	if r.require.set {
		cl.RequireSignedRequestObject = r.require.value
	}
	switch r.alg {
	case "":
	case "-":
		cl.RequestObjectSigningAlg = ""
	default:
		cl.RequestObjectSigningAlg = r.alg
	}
}
