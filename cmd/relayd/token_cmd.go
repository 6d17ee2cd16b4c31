package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/relaysfu/relayd/signaling"
)

// runTokenCmd implements
//
//	relayd token --secret S --identity I [--room R] [--role host|viewer] [--name N] [--admin] [--ttl 1h]
//
// args are the arguments after "token"; env is os.Environ()-style, read for
// RELAYD_SECRET when --secret is not given. It prints the token and a
// newline to stdout and returns the exit code: 0, or 2 after printing the
// problem to stderr. --help prints the usage and returns 0.
func runTokenCmd(args []string, env []string, stdout, stderr io.Writer) int {
	var (
		spec   signaling.TokenSpec
		secret string
	)
	fs := flag.NewFlagSet("relayd token", flag.ContinueOnError)
	fs.SetOutput(stderr) // flag prints parse errors and the usage here
	fs.StringVar(&secret, "secret", "", "HS256 `secret` of the server (default $"+configEnvName("secret")+")")
	fs.StringVar(&spec.Identity, "identity", "", "the token's `identity` (sub), required")
	fs.StringVar(&spec.Room, "room", "", "`room` the token joins; without it the token is a user session (invitations only)")
	fs.StringVar(&spec.Role, "role", "", "`role` in the room: host or viewer (default viewer when --room is given)")
	fs.StringVar(&spec.Name, "name", "", "display `name`")
	fs.BoolVar(&spec.Admin, "admin", false, "make an admin token (HTTP API)")
	fs.DurationVar(&spec.TTL, "ttl", time.Hour, "lifetime of the token")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: relayd token --secret S --identity I [--room R] [--role host|viewer] [--name N] [--admin] [--ttl 1h]")
		fs.PrintDefaults()
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // flag has printed the error and the usage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relayd token: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if secret == "" {
		secret = parseEnvList(env)[configEnvName("secret")]
	}
	if secret == "" {
		return fail("--secret or %s is required", configEnvName("secret"))
	}
	if spec.Identity == "" {
		return fail("--identity is required")
	}
	if spec.TTL <= 0 {
		return fail("--ttl %v: want > 0", spec.TTL)
	}
	if spec.Room != "" && spec.Role == "" {
		spec.Role = "viewer"
	}

	tok, err := signaling.NewTokens([]byte(secret)).Issue(spec)
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
