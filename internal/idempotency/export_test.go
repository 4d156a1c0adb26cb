package idempotency

// QueuedClaims counts the claims queued in s, not yet taken into a batch.
func QueuedClaims(s *Store) int {
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	return len(s.claims.queue)
}
