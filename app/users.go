package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/models"
)

func runUsers(ctx context.Context, c *cli, args []string) error {
	return dispatch(ctx, c, "users", args, map[string]func(context.Context, *cli, []string) error{
		"create":       usersCreate,
		"list":         usersList,
		"get":          usersGet,
		"delete":       usersDelete,
		"set-password": usersSetPassword,
		"set-roles":    usersSetRoles,
		"set-claims":   usersSetClaims,
		"set-name":     usersSetName,
		"disable":      usersDisable,
		"enable":       usersEnable,
		"reset-mfa":    usersResetMFA,
	})
}

type userJSON struct {
	ID            string         `json:"id"`
	Email         string         `json:"email"`
	Name          string         `json:"name"`
	EmailVerified bool           `json:"email_verified"`
	Disabled      bool           `json:"disabled"`
	Pool          string         `json:"pool"`
	Roles         []string       `json:"roles"`
	Extras        map[string]any `json:"extras"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

func toUserJSON(u *models.User) userJSON {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	extras := u.Extras
	if extras == nil {
		extras = map[string]any{}
	}
	return userJSON{
		ID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerified, Disabled: u.Disabled, Pool: u.Pool,
		Roles: roles, Extras: extras, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

// claimsFlag collects --claims k=v (repeatable, or comma separated). A value that parses as JSON (number,
// boolean, array, object, quoted string) is kept as that JSON value; anything else is a string. Which names
// may be custom claims is the store's rule (registered claim names are refused there, for every entry point).
type claimsFlag map[string]any

func (c claimsFlag) String() string { return "" }

func (c claimsFlag) Set(v string) error {
	for _, pair := range splitClaims(v) {
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value", pair)
		}
		var parsed any
		if err := json.Unmarshal([]byte(val), &parsed); err == nil {
			c[k] = parsed
		} else {
			c[k] = val
		}
	}
	return nil
}

// splitClaims splits on commas that are not inside JSON brackets or quotes.
func splitClaims(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case quoted:
		case r == '[' || r == '{':
			depth++
		case r == ']' || r == '}':
			depth--
		case r == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// lookupUser finds a user by --id, --email or the one positional argument (an id or an email).
func lookupUser(ctx context.Context, a *app, fs *flag.FlagSet, id, email, pool string) (*models.User, error) {
	if id == "" && email == "" && fs.NArg() == 1 {
		if strings.Contains(fs.Arg(0), "@") {
			email = fs.Arg(0)
		} else {
			id = fs.Arg(0)
		}
	}
	var u *models.User
	var err error
	switch {
	case id != "":
		u, err = a.store.UserByID(ctx, id)
	case email != "":
		u, err = a.store.UserByEmail(ctx, pool, email)
	default:
		return nil, errors.New("give the user as --id, --email or the one argument")
	}
	if errors.Is(err, models.ErrNotFound) {
		return nil, errors.New("no such user")
	}
	return u, err
}

// userCommand is the shape of every single-user command: find the user, change something, print it.
func userCommand(name string, extra func(fs *flag.FlagSet) func(ctx context.Context, c *cli, a *app, u *models.User) error) func(context.Context, *cli, []string) error {
	return func(ctx context.Context, c *cli, args []string) error {
		fs, cf := c.newFlagSet("users " + name)
		id := fs.String("id", "", "user id")
		email := fs.String("email", "", "user email")
		pool := fs.String("pool", "", "the pool the email is in (default: default)")
		asJSON := fs.Bool("json", false, "print JSON")
		act := extra(fs)
		return c.withApp(ctx, fs, cf, args, func(a *app) error {
			u, err := lookupUser(ctx, a, fs, *id, *email, *pool)
			if err != nil {
				return err
			}
			if act != nil {
				if err := act(ctx, c, a, u); err != nil {
					return err
				}
				if u, err = a.store.UserByID(ctx, u.ID); err != nil {
					return err
				}
			}
			if *asJSON || act == nil {
				return writeJSON(c, toUserJSON(u))
			}
			fmt.Fprintf(c.stdout, "updated user %s (%s)\n", u.ID, u.Email)
			return nil
		})
	}
}

var usersGet = userCommand("get", func(*flag.FlagSet) func(context.Context, *cli, *app, *models.User) error { return nil })

const passwordStdinHelp = "read the password from standard input: typed without echo, twice, on a terminal; else its first line"

var usersSetPassword = userCommand("set-password", func(fs *flag.FlagSet) func(context.Context, *cli, *app, *models.User) error {
	password := fs.String("password", "", "new password (prefer --password-stdin)")
	stdin := fs.Bool("password-stdin", false, passwordStdinHelp)
	return func(ctx context.Context, c *cli, a *app, u *models.User) error {
		pw, err := newPasswordInput.read(ctx, c, *password, *stdin)
		if err != nil {
			return err
		}
		// A reset is what an operator does when the account may be in someone else's hands: every session
		// ends and its tokens are revoked, in the same transaction as the change, as when the user changes the
		// password themselves.
		n, err := a.store.ChangePassword(ctx, u.ID, pw, "", a.clock())
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "ended %d session(s) of %s and revoked their tokens\n", n, u.Email)
		return nil
	}
})

var usersSetRoles = userCommand("set-roles", func(fs *flag.FlagSet) func(context.Context, *cli, *app, *models.User) error {
	roles := fs.String("roles", "", "the complete list of roles, comma separated (empty clears them)")
	return func(ctx context.Context, c *cli, a *app, u *models.User) error {
		return a.store.SetRoles(ctx, u.ID, splitList(*roles))
	}
})

var usersSetClaims = userCommand("set-claims", func(fs *flag.FlagSet) func(context.Context, *cli, *app, *models.User) error {
	claims := claimsFlag{}
	fs.Var(claims, "claims", "custom claims k=v (repeatable; values that parse as JSON stay JSON)")
	replace := fs.Bool("replace", false, "replace all custom claims instead of merging")
	unset := fs.String("unset", "", "claims to remove, comma separated")
	return func(ctx context.Context, c *cli, a *app, u *models.User) error {
		next := map[string]any{}
		if !*replace {
			for k, v := range u.Extras {
				next[k] = v
			}
		}
		for k, v := range claims {
			next[k] = v
		}
		for _, k := range splitList(*unset) {
			delete(next, k)
		}
		return a.store.SetExtras(ctx, u.ID, next)
	}
})

var usersSetName = userCommand("set-name", func(fs *flag.FlagSet) func(context.Context, *cli, *app, *models.User) error {
	name := fs.String("name", "", "display name")
	return func(ctx context.Context, c *cli, a *app, u *models.User) error {
		return a.store.SetName(ctx, u.ID, *name)
	}
})

var usersDisable = userCommand("disable", func(*flag.FlagSet) func(context.Context, *cli, *app, *models.User) error {
	return func(ctx context.Context, c *cli, a *app, u *models.User) error {
		return a.store.SetDisabled(ctx, u.ID, true, a.clock())
	}
})

var usersEnable = userCommand("enable", func(*flag.FlagSet) func(context.Context, *cli, *app, *models.User) error {
	return func(ctx context.Context, c *cli, a *app, u *models.User) error {
		return a.store.SetDisabled(ctx, u.ID, false, a.clock())
	}
})

// usersResetMFA removes every second factor and recovery code of a user who lost their device; they sign in with
// the password alone (or, in a pool that requires MFA, enrol again at the next sign-in).
var usersResetMFA = userCommand("reset-mfa", func(*flag.FlagSet) func(context.Context, *cli, *app, *models.User) error {
	return func(ctx context.Context, c *cli, a *app, u *models.User) error {
		n, err := a.store.ResetMFA(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "removed %d factor(s) and the recovery codes of %s\n", n, u.Email)
		return nil
	}
})

func usersCreate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("users create")
	email := fs.String("email", "", "email address (unique, case-insensitive)")
	password := fs.String("password", "", "password (prefer --password-stdin: flags show up in process lists)")
	passwordStdin := fs.Bool("password-stdin", false, passwordStdinHelp)
	roles := fs.String("roles", "", "roles, comma separated")
	name := fs.String("name", "", "display name")
	verified := fs.Bool("email-verified", false, "mark the email address as verified")
	pool := fs.String("pool", "", "user pool (default: default)")
	claims := claimsFlag{}
	fs.Var(claims, "claims", "custom claims k=v (repeatable; values that parse as JSON stay JSON)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	if *email == "" || (*password == "" && !*passwordStdin) {
		return errors.New("--email and a password (--password or --password-stdin) are required")
	}
	pw, err := newPasswordInput.read(ctx, c, *password, *passwordStdin)
	if err != nil {
		return err
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.store.CreateUserWith(ctx, models.NewUser{
		Email: *email, Password: pw, Name: *name, Roles: splitList(*roles), Extras: claims, EmailVerified: *verified,
		Pool: *pool,
	})
	if errors.Is(err, models.ErrConflict) {
		return fmt.Errorf("a user with email %q already exists in that pool", *email)
	} else if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c, toUserJSON(u))
	}
	fmt.Fprintf(c.stdout, "created user %s (%s)\n", u.ID, u.Email)
	return nil
}

func usersList(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("users list")
	pool := fs.String("pool", "", "only this pool (default: every pool)")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		list, err := a.store.ListUsers(ctx, *pool)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]userJSON, 0, len(list))
			for i := range list {
				out = append(out, toUserJSON(&list[i]))
			}
			return writeJSON(c, out)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPOOL\tEMAIL\tROLES\tCREATED")
		for _, u := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Pool, u.Email, strings.Join(u.Roles, ","), u.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

func usersDelete(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("users delete")
	id := fs.String("id", "", "user id")
	email := fs.String("email", "", "or the user's email")
	pool := fs.String("pool", "", "the pool the email is in (default: default)")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		uid := *id
		if uid == "" && *email != "" {
			u, err := a.store.UserByEmail(ctx, *pool, *email)
			if errors.Is(err, models.ErrNotFound) {
				return fmt.Errorf("no user with email %q", *email)
			} else if err != nil {
				return err
			}
			uid = u.ID
		}
		if uid == "" {
			var err error
			if uid, err = idArg(fs, "", "user id"); err != nil {
				return errors.New("give --id, --email or the user id as the one argument")
			}
		}
		if err := a.store.DeleteUser(ctx, uid); errors.Is(err, models.ErrNotFound) {
			return fmt.Errorf("no user with id %q", uid)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deleted user %s\n", uid)
		return nil
	})
}
