package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/models"
)

func runPools(ctx context.Context, c *cli, args []string) error {
	return dispatch(ctx, c, "pools", args, map[string]func(context.Context, *cli, []string) error{
		"create": poolsCreate,
		"list":   poolsList,
		"update": poolsUpdate,
	})
}

// poolName takes the pool from --name or the one positional argument.
func poolName(fs *flag.FlagSet, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if fs.NArg() == 1 {
		return fs.Arg(0), nil
	}
	return "", errors.New("give the pool as --name or as the one argument")
}

func poolsCreate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("pools create")
	name := fs.String("name", "", "pool name: lower-case letters, digits, - and _")
	signup := fs.Bool("signup", true, "users may sign themselves up through the token API (clients must also allow it)")
	roles := fs.String("default-roles", "", "roles given to users who sign up, comma separated")
	mfaPolicy := fs.String("mfa", models.MFAOptional, "multi-factor policy: off, optional or required")
	verify := fs.Bool("require-email-verification", false, "users must verify their email before signing in (needs LATCHKEY_SMTP_URL)")
	otp := fs.Bool("passwordless-codes", false, "users may sign in with a code or link mailed to them (needs LATCHKEY_SMTP_URL)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	n, err := poolName(fs, *name)
	if err != nil {
		return err
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	p := models.Pool{Name: n, SignupEnabled: *signup, DefaultRoles: splitList(*roles), MFA: *mfaPolicy, RequireEmailVerification: *verify,
		PasswordlessCodes: *otp}
	if err := a.store.CreatePool(ctx, p); errors.Is(err, models.ErrConflict) {
		return fmt.Errorf("pool %q already exists", n)
	} else if err != nil {
		return err
	}
	got, err := a.store.GetPool(ctx, n)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c, got)
	}
	fmt.Fprintf(c.stdout, "created pool %s (signup %v, mfa %s)\n", got.Name, got.SignupEnabled, got.MFA)
	warnNoMail(c, a, got)
	return nil
}

func poolsUpdate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("pools update")
	name := fs.String("name", "", "pool name")
	signup := fs.String("signup", "", "true or false")
	roles := fs.String("default-roles", "", "replace the default roles (comma separated; \"-\" clears them)")
	mfaPolicy := fs.String("mfa", "", "multi-factor policy: off, optional or required (default: unchanged)")
	verify := fs.String("require-email-verification", "", "true or false: users must verify their email before signing in (needs LATCHKEY_SMTP_URL)")
	otp := fs.String("passwordless-codes", "", "true or false: users may sign in with a code or link mailed to them (needs LATCHKEY_SMTP_URL)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	n, err := poolName(fs, *name)
	if err != nil {
		return err
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := a.store.GetPool(ctx, n)
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("no pool %q", n)
	} else if err != nil {
		return err
	}
	switch strings.ToLower(*signup) {
	case "":
	case "true", "on", "yes":
		p.SignupEnabled = true
	case "false", "off", "no":
		p.SignupEnabled = false
	default:
		return errors.New("--signup must be true or false")
	}
	switch strings.ToLower(*verify) {
	case "":
	case "true", "on", "yes":
		p.RequireEmailVerification = true
	case "false", "off", "no":
		p.RequireEmailVerification = false
	default:
		return errors.New("--require-email-verification must be true or false")
	}
	switch strings.ToLower(*otp) {
	case "":
	case "true", "on", "yes":
		p.PasswordlessCodes = true
	case "false", "off", "no":
		p.PasswordlessCodes = false
	default:
		return errors.New("--passwordless-codes must be true or false")
	}
	switch *roles {
	case "":
	case "-":
		p.DefaultRoles = nil
	default:
		p.DefaultRoles = splitList(*roles)
	}
	if *mfaPolicy != "" {
		p.MFA = *mfaPolicy
	}
	if err := a.store.UpdatePool(ctx, *p); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c, p)
	}
	fmt.Fprintf(c.stdout, "updated pool %s\n", p.Name)
	warnNoMail(c, a, p)
	return nil
}

func poolsList(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("pools list")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		list, err := a.store.ListPools(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if list == nil {
				list = []models.Pool{}
			}
			return writeJSON(c, list)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POOL\tSIGNUP\tMFA\tDEFAULT ROLES\tCREATED")
		for _, p := range list {
			fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\n", p.Name, p.SignupEnabled, p.MFA, strings.Join(p.DefaultRoles, ","), p.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

// warnNoMail says when a pool requires verified emails but this configuration sends no mail.
func warnNoMail(c *cli, a *app, p *models.Pool) {
	if p.RequireEmailVerification && a.cfg.SMTPURL == "" {
		fmt.Fprintf(c.stderr, "warning: pool %s requires email verification but LATCHKEY_SMTP_URL is not set: "+
			"sign-up in it answers mail_not_configured until the server has mail\n", p.Name)
	}
	if p.PasswordlessCodes && a.cfg.SMTPURL == "" {
		fmt.Fprintf(c.stderr, "warning: pool %s allows passwordless codes but LATCHKEY_SMTP_URL is not set: "+
			"otp/start answers mail_not_configured until the server has mail\n", p.Name)
	}
}
