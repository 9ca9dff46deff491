package classify

// MySQLLastInsertIDQuery reports whether q is SELECT LAST_INSERT_ID() (or @@IDENTITY,
// @@LAST_INSERT_ID) and nothing else, and the column name the answer has.
func MySQLLastInsertIDQuery(q []byte) (string, bool) {
	if len(q) > 100 || !myContainsFold(q, "INSERT_ID") && !myContainsFold(q, "IDENTITY") {
		return "", false
	}
	l := myLexer{s: string(q)}
	var toks []myToken
	for {
		t, ok := l.next()
		if !ok {
			break
		}
		toks = append(toks, t)
	}
	if n := len(toks); n > 0 && toks[n-1].text == ";" {
		toks = toks[:n-1]
	}
	if len(toks) < 2 || !myIsWord(toks[0], "SELECT") {
		return "", false
	}
	var name string
	rest := toks[1:]
	switch {
	case len(rest) >= 3 && myIsWord(rest[0], "LAST_INSERT_ID") && rest[1].text == "(" && rest[2].text == ")":
		name, rest = l.s[rest[0].start:rest[2].end], rest[3:]
	case rest[0].kind == mtSysVar && (rest[0].text == "identity" || rest[0].text == "last_insert_id"):
		name, rest = l.s[rest[0].start:rest[0].end], rest[1:]
	default:
		return "", false
	}
	if len(rest) > 0 && myIsWord(rest[0], "AS") {
		rest = rest[1:]
	}
	switch {
	case len(rest) == 0:
		return name, true
	case len(rest) == 1 && rest[0].kind == mtQuoted:
		return rest[0].text, true
	case len(rest) == 1 && rest[0].kind == mtWord:
		return l.s[rest[0].start:rest[0].end], true
	case len(rest) == 1 && rest[0].kind == mtString:
		return myUnquote(l.s[rest[0].start:rest[0].end]), true
	}
	return "", false
}

// myContainsFold reports whether b holds upper, ignoring ASCII case.
func myContainsFold(b []byte, upper string) bool {
	for i := 0; i+len(upper) <= len(b); i++ {
		if asciiEqualFold(b[i:i+len(upper)], upper) {
			return true
		}
	}
	return false
}
