// Package mongotest stands in for txkit's mongotest in the guide examples:
// the corpus is type-checked, never run, and loading the real server's
// source for each analysis would only make the test slow.
package mongotest

// Server is an in-process server.
type Server struct{}

// NewServer starts a server.
func NewServer() (*Server, error) { return &Server{}, nil }

// URI is the server's connection string.
func (s *Server) URI() string { return "mongodb://127.0.0.1:27017/?directConnection=true" }

// Close stops the server.
func (s *Server) Close() error { return nil }
