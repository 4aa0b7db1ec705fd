package jsonapi

import (
	"time"

	"github.com/latchkey/latchkey/models"
)

// User is the user object of the token API's /me and the admin API, the shape no-code tools map: a flat object
// with a roles array and an extras object, never null.
type User struct {
	ID            string         `json:"id"`
	Email         string         `json:"email"`
	Name          string         `json:"name"`
	EmailVerified bool           `json:"email_verified"`
	Roles         []string       `json:"roles"`
	Pool          string         `json:"pool"`
	Extras        map[string]any `json:"extras"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// UserOf is u as the APIs show it.
func UserOf(u *models.User) User {
	roles, extras := u.Roles, u.Extras
	if roles == nil {
		roles = []string{}
	}
	if extras == nil {
		extras = map[string]any{}
	}
	return User{ID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerified, Roles: roles,
		Pool: u.Pool, Extras: extras, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}
