// Package webrule detects hostile HTTP requests with rules kept as data:
// one embedded, versioned rule pack (rules.json) that users extend with
// files of their own.
//
// # Matching
//
// A [Set] matches every rule against one [Request] in a single pass per
// field: all literal atoms of all rules sit in one Aho-Corasick automaton
// per field (path, query, ua, request, method, version); one walk over
// the lower-cased field marks which atoms occurred, only rules whose
// atoms occurred become candidates, and a rule's regular expression, if
// it has one, runs only for those candidates as a confirmation. Paths and
// the request line are matched raw, URL-decoded once and URL-decoded
// twice (attackers double-encode: %252e%252e); the query likewise, with
// '+' decoded to a space. Invalid percent escapes stay as they are. Text
// is lower-cased (ASCII) before matching, so atoms and regular
// expressions see lower-case text.
//
// # Writing a rule
//
// A rule file is JSON:
//
//	{"version": "2026.12.1", "rules": [{
//	  "id": "cve-2021-41773-apache-traversal",
//	  "title": "Apache 2.4.49 path traversal (CVE-2021-41773)",
//	  "severity": "critical",
//	  "category": "cve",
//	  "tags": ["cve-2021-41773", "apache"],
//	  "methods": ["GET", "POST"],
//	  "status": ["2xx", "4xx", "500"],
//	  "match": [{"in": ["path"], "any": ["/.%2e/", "%%32%65"], "regex": "..."}],
//	  "examples": {
//	    "match": ["GET /cgi-bin/.%2e/.%2e/.%2e/etc/passwd HTTP/1.1"],
//	    "nomatch": ["GET /cgi-bin/status HTTP/1.1"]
//	  }
//	}]}
//
// Fields:
//
//   - id: stable, lower-case, [a-z0-9._-]; a user rule with the id of an
//     embedded one replaces it.
//   - title, severity (critical, high, medium, low, info), category (one
//     of the Category constants), tags (lower-case; CVE ids as
//     "cve-2021-44228").
//   - methods (optional): the request must use one of them (any case).
//   - status (optional): the answer must be in one of these classes
//     ("4xx") or codes ("401"); a request whose status is unknown (0)
//     never matches a rule that names statuses.
//   - user (optional, true): the access log's user field must be set
//     (HTTP basic auth was attempted).
//   - match: conditions, all of which must hold. A condition holds when,
//     in at least one of its fields ("in": "path", "query", "ua",
//     "request", "method", "version"), at least one "any" atom occurs,
//     every "all" atom occurs, no "none" atom occurs, "regex" matches,
//     "not_regex" does not, and the whole field is none of "not_in".
//     Every condition needs at least one atom in "any" or "all": the
//     atoms are the prefilter that keeps matching one pass. The first
//     condition's "any" atoms (or its "all" atoms when it has no "any")
//     make the rule a candidate, so put the rarest condition first. The
//     request field is "METHOD path?query VERSION" as logged. A rule
//     without conditions needs methods or user.
//   - examples: requests the rule must match and must not match, at
//     least one of each. An example is a request line as logged
//     ("GET /x?y=1 HTTP/1.1"), or an object {"req": "...", "status": 404,
//     "ua": "...", "user": "..."}. Parse checks every example against the
//     rule, so a rule file that contradicts itself is rejected.
//   - disabled (true): drops the rule of the same id from the set (in a
//     user file, turns off an embedded rule).
//
// # User rules
//
// [Load] merges files over the embedded pack: a rule whose id is already
// in the pack replaces it, a new id adds a rule, and "disabled": true
// removes one. The sensor names these files in its configuration.
package webrule
