package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/models"
)

func runUsers(ctx context.Context, c *cli, args []string) error {
	return dispatch(ctx, c, "users", args, map[string]func(context.Context, *cli, []string) error{
		"create": usersCreate,
		"list":   usersList,
		"delete": usersDelete,
	})
}

type userJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toUserJSON(u *models.User) userJSON {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userJSON{ID: u.ID, Email: u.Email, Roles: roles, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func usersCreate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("users create")
	email := fs.String("email", "", "email address (unique, case-insensitive)")
	password := fs.String("password", "", "password (prefer --password-stdin: flags show up in process lists)")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	roles := fs.String("roles", "", "roles, comma separated")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	pw := *password
	if *passwordStdin {
		if pw != "" {
			return errors.New("give --password or --password-stdin, not both")
		}
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("--password-stdin: no password on standard input")
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if *email == "" || pw == "" {
		return errors.New("--email and a password (--password or --password-stdin) are required")
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.store.CreateUser(ctx, *email, pw, splitList(*roles))
	if errors.Is(err, models.ErrConflict) {
		return fmt.Errorf("a user with email %q already exists", *email)
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
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	list, err := a.store.ListUsers(ctx)
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
	fmt.Fprintln(tw, "ID\tEMAIL\tROLES\tCREATED")
	for _, u := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.ID, u.Email, strings.Join(u.Roles, ","), u.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func usersDelete(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("users delete")
	id := fs.String("id", "", "user id")
	email := fs.String("email", "", "or the user's email")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	uid := *id
	if uid == "" && *email != "" {
		u, err := a.store.UserByEmail(ctx, *email)
		if errors.Is(err, models.ErrNotFound) {
			return fmt.Errorf("no user with email %q", *email)
		} else if err != nil {
			return err
		}
		uid = u.ID
	}
	if uid == "" {
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
}
