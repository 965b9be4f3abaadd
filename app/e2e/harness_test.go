package e2e

// CutConnections closes every connection the server accepted, SSE streams
// included: the browser sees the relay drop it.
func (s *Server) CutConnections() int { return s.ln.closeAll() }
