package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/latchkey/latchkey/handlers/browser"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/upstream"
)

// providers manages the other providers a pool's users may sign in with (see models.UpstreamProvider, whose
// Validate is the one owner of the rules; this only maps flags).
func runProviders(ctx context.Context, c *cli, args []string) error {
	return dispatch(ctx, c, "providers", args, map[string]func(context.Context, *cli, []string) error{
		"create": providersCreate,
		"list":   providersList,
		"update": providersUpdate,
		"delete": providersDelete,
	})
}

// providerFlags are the flags of create and update; on update only those given change.
type providerFlags struct {
	fs                                          *flag.FlagSet
	id, pool, kind, name, issuer, clientID      *string
	secret                                      *string
	secretStdin                                 *bool
	scopes, claimEmail, claimName, claimRoles   *string
	githubAuthURL, githubTokenURL, githubAPIURL *string
	asJSON                                      *bool
}

func newProviderFlags(fs *flag.FlagSet) *providerFlags {
	return &providerFlags{
		fs:             fs,
		id:             fs.String("id", "", "provider id (a-z, 0-9, _ and -): it appears in /login/upstream/{id}"),
		pool:           fs.String("pool", "", "the pool whose users sign in with it (create only; default: the default pool)"),
		kind:           fs.String("kind", "", "oidc (any OpenID Connect provider) or github"),
		name:           fs.String("display-name", "", "the button's text: \"Sign in with <display name>\""),
		issuer:         fs.String("issuer-url", "", "oidc: the issuer URL (its discovery document is read from it)"),
		clientID:       fs.String("client-id", "", "our client id at the provider"),
		secret:         fs.String("client-secret", "", "our client secret at the provider (prefer --client-secret-stdin)"),
		secretStdin:    fs.Bool("client-secret-stdin", false, "read the client secret from standard input: typed without echo on a terminal; else its first line"),
		scopes:         fs.String("scopes", "", "scopes to ask for (default oidc: openid email profile; github: read:user user:email)"),
		claimEmail:     fs.String("claim-email", "", "oidc: the ID token claim holding the email (default: email)"),
		claimName:      fs.String("claim-name", "", "oidc: the claim holding the name (default: name; \"-\": none)"),
		claimRoles:     fs.String("claim-roles", "", "oidc: the claim holding roles for users it creates (default: none; \"-\": none)"),
		githubAuthURL:  fs.String("github-auth-url", "", "github: the authorization endpoint (default: github.com's)"),
		githubTokenURL: fs.String("github-token-url", "", "github: the token endpoint (default: github.com's)"),
		githubAPIURL:   fs.String("github-api-url", "", "github: the REST API base URL (default: https://api.github.com)"),
		asJSON:         fs.Bool("json", false, "print JSON"),
	}
}

// apply sets on p the flags given (all of them on create), and the client secret sealed.
func (f *providerFlags) apply(ctx context.Context, c *cli, a *app, p *models.UpstreamProvider) error {
	given := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	set := func(name string, dst *string, v string) {
		if given[name] {
			*dst = v
			if v == "-" {
				*dst = "" // cleared
			}
		}
	}
	set("kind", &p.Kind, *f.kind)
	set("display-name", &p.DisplayName, *f.name)
	set("issuer-url", &p.Issuer, *f.issuer)
	set("client-id", &p.ClientID, *f.clientID)
	set("claim-email", &p.ClaimEmail, *f.claimEmail)
	set("claim-name", &p.ClaimName, *f.claimName)
	set("claim-roles", &p.ClaimRoles, *f.claimRoles)
	set("github-auth-url", &p.AuthURL, *f.githubAuthURL)
	set("github-token-url", &p.TokenURL, *f.githubTokenURL)
	set("github-api-url", &p.APIURL, *f.githubAPIURL)
	if given["scopes"] {
		p.Scopes = splitList(*f.scopes)
	}
	if given["client-secret"] || *f.secretStdin {
		secret, err := clientSecretInput.read(ctx, c, *f.secret, *f.secretStdin)
		if err != nil {
			return err
		}
		if p.SealedSecret, err = upstream.NewSecretSealer(a.secret).Seal(p.ID, secret); err != nil {
			return err
		}
	}
	return nil
}

// withDefaults fills what a new provider of its kind leaves unsaid.
func withDefaults(p *models.UpstreamProvider, given func(string) bool) {
	switch p.Kind {
	case models.UpstreamKindOIDC:
		if !given("scopes") {
			p.Scopes = []string{"openid", "email", "profile"}
		}
		if !given("claim-email") {
			p.ClaimEmail = "email"
		}
		if !given("claim-name") {
			p.ClaimName = "name"
		}
	case models.UpstreamKindGitHub:
		if !given("scopes") {
			p.Scopes = []string{"read:user", "user:email"}
		}
	}
}

func providersCreate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("providers create")
	f := newProviderFlags(fs)
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	if !*f.secretStdin && *f.secret == "" {
		return errors.New("--client-secret or --client-secret-stdin is required")
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	p := &models.UpstreamProvider{ID: *f.id, Pool: *f.pool}
	if err := f.apply(ctx, c, a, p); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	withDefaults(p, func(n string) bool { return given[n] })
	switch err := a.store.CreateUpstreamProvider(ctx, p); {
	case errors.Is(err, models.ErrConflict):
		return fmt.Errorf("provider %q already exists", p.ID)
	case errors.Is(err, models.ErrInvalid):
		return validationError(err)
	case err != nil:
		return err
	}
	return showProvider(ctx, c, a, p.ID, *f.asJSON, "created")
}

func providersUpdate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("providers update")
	f := newProviderFlags(fs)
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := a.store.UpstreamProviderByID(ctx, *f.id)
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("no provider %q", *f.id)
	} else if err != nil {
		return err
	}
	if err := f.apply(ctx, c, a, p); err != nil {
		return err
	}
	if err := a.store.UpdateUpstreamProvider(ctx, p); errors.Is(err, models.ErrInvalid) {
		return validationError(err)
	} else if err != nil {
		return err
	}
	return showProvider(ctx, c, a, p.ID, *f.asJSON, "updated")
}

func showProvider(ctx context.Context, c *cli, a *app, id string, asJSON bool, verb string) error {
	p, err := a.store.UpstreamProviderByID(ctx, id)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(c, p)
	}
	fmt.Fprintf(c.stdout, "%s provider %s (%s) for pool %s; its redirect URI: %s\n", verb, p.ID, p.Kind, p.Pool, a.cfg.Issuer+browser.PathUpstreamCallback)
	return nil
}

func providersList(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("providers list")
	pool := fs.String("pool", "", "only this pool's providers")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		list, err := a.store.ListUpstreamProviders(ctx, *pool)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c, list)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPOOL\tKIND\tDISPLAY NAME\tISSUER\tCLIENT ID")
		for _, p := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Pool, p.Kind, p.DisplayName, p.Issuer, p.ClientID)
		}
		return tw.Flush()
	})
}

func providersDelete(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("providers delete")
	id := fs.String("id", "", "provider id")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		if err := a.store.DeleteUpstreamProvider(ctx, *id); errors.Is(err, models.ErrNotFound) {
			return fmt.Errorf("no provider %q", *id)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deleted provider %s (its users stay; their links to it are gone)\n", *id)
		return nil
	})
}
