// Package reqmeta carries who made a change and from where — the request id, the client's address, its user
// agent and the actor (a user, an admin client, the CLI) — from the HTTP layer (or the CLI) to the models that
// write audit events, through the context, so the store's signatures stay about the change. It imports nothing
// of ours, so handlers and models both may use it without an arrow pointing back.
package reqmeta

import (
	"context"
	"sync"
)

// Meta is what an audit event records about the request that caused it. Empty fields are unknown.
type Meta struct {
	RequestID string
	IP        string
	UserAgent string
	// Actor is who acted when it is not the event's own user: "client:ID" (an admin client through the admin
	// API), "cli" (an operator's command), "system" (a background job). "" for a user acting for themselves.
	Actor string
}

// Source supplies a request's metadata on first use, so requests that change nothing (most) never resolve it.
type Source interface{ RequestMeta() Meta }

type key struct{}

type holder struct {
	mu       sync.Mutex
	src      Source
	resolved bool
	meta     Meta
	actor    string
}

// Attach returns ctx carrying src's metadata, resolved once, on first use.
func Attach(ctx context.Context, src Source) context.Context {
	return context.WithValue(ctx, key{}, &holder{src: src})
}

// With returns ctx carrying fixed metadata (the CLI's: Actor "cli").
func With(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, key{}, &holder{resolved: true, meta: m, actor: m.Actor})
}

// SetActor names who is acting for the rest of the request under ctx (an admin API call, once its client is
// authenticated). It does nothing without metadata attached.
func SetActor(ctx context.Context, actor string) {
	if h, ok := ctx.Value(key{}).(*holder); ok {
		h.mu.Lock()
		h.actor = actor
		h.mu.Unlock()
	}
}

// From is the metadata of the request under ctx; the zero Meta when none is attached.
func From(ctx context.Context) Meta {
	h, ok := ctx.Value(key{}).(*holder)
	if !ok {
		return Meta{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.resolved {
		h.meta, h.resolved = h.src.RequestMeta(), true
	}
	m := h.meta
	m.Actor = h.actor
	return m
}
