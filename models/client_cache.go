package models

import (
	"context"
	"sync"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// clientCacheTTL bounds how long another node's change to a client's metadata (scopes, redirect URIs, token
// format) can go unseen. Secrets are never trusted from the cache: authentication from it is confirmed by the
// database in the same statement that uses it (ClientCheck), so a rotated secret stops working at once on every
// node.
const clientCacheTTL = 10 * time.Second

const clientCacheMax = 10000

type cachedClient struct {
	client  *Client
	fetched time.Time
}

// clientCache holds clients for rebuilding stored requests (introspection, refresh), where every token lookup
// would otherwise read its client row again, and for confirmed authentication (ClientCheck).
type clientCache struct {
	mu      sync.RWMutex
	entries map[string]cachedClient
}

func (c *clientCache) get(id string, now time.Time) (*Client, bool) {
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if !ok || now.Sub(e.fetched) > clientCacheTTL {
		return nil, false
	}
	return e.client, true
}

func (c *clientCache) put(cl *Client, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= clientCacheMax {
		c.entries = make(map[string]cachedClient)
	}
	c.entries[cl.ID] = cachedClient{client: cl, fetched: now}
}

func (c *clientCache) forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// storedRequestClient is the client of a stored token: from the cache when fresh (unless fresh is set), else read
// and cached. Inside a transaction it always reads and never caches, so a transaction sees its own writes and
// nothing uncommitted reaches other requests.
func (s *Store) storedRequestClient(ctx context.Context, id string, fresh bool) (fosite.Client, error) {
	_, inTx := ctx.Value(txKey{s}).(*gorm.DB)
	if !inTx && !fresh {
		if c, ok := s.clients.get(id, time.Now()); ok {
			return c, nil
		}
	}
	c, err := s.ClientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if !inTx {
		s.clients.put(c, time.Now())
	}
	return c, nil
}
