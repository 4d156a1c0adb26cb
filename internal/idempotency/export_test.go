package idempotency

// QueuedClaims counts the claims queued in s, not yet taken into a batch.
func QueuedClaims(s *Store) int {
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	return len(s.claims.queue)
}

// WaitClaimSends waits until no insert of s's claims is in flight: one
// whose leader gave up goes on after its caller returned.
func WaitClaimSends(s *Store) { s.claims.sends.Wait() }

// ClaimsSending reports whether a leader of s's claims is sending.
func ClaimsSending(s *Store) bool {
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	return s.claims.busy
}
