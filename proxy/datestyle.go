package proxy

import "strings"

// canonicalDateStyle returns DateStyle value v in the form PostgreSQL reports it ("German" is
// reported "German, DMY"), given the current value cur, as check_datestyle in PostgreSQL's
// variable.c computes it; ok is false for a value PostgreSQL would refuse.
func canonicalDateStyle(v, cur string) (string, bool) {
	style, order, ok := splitDateStyle(cur)
	if !ok {
		style, order = "ISO", "MDY"
	}
	haveStyle, haveOrder := false, false
	setStyle := func(s string) bool {
		if haveStyle && style != s {
			return false
		}
		style, haveStyle = s, true
		return true
	}
	setOrder := func(o string) bool {
		if haveOrder && order != o {
			return false
		}
		order, haveOrder = o, true
		return true
	}
	for _, tok := range strings.Split(v, ",") {
		tok = strings.TrimSpace(tok)
		good := true
		switch strings.ToUpper(tok) {
		case "ISO":
			good = setStyle("ISO")
		case "SQL":
			good = setStyle("SQL")
		case "POSTGRES":
			good = setStyle("Postgres")
		case "GERMAN":
			good = setStyle("German")
			if !haveOrder {
				order = "DMY"
			}
		case "YMD":
			good = setOrder("YMD")
		case "DMY", "EURO", "EUROPEAN":
			good = setOrder("DMY")
		case "MDY", "US", "NONEURO", "NONEUROPEAN":
			good = setOrder("MDY")
		default:
			return "", false
		}
		if !good {
			return "", false
		}
	}
	return style + ", " + order, true
}

// splitDateStyle splits a canonical DateStyle ("ISO, MDY").
func splitDateStyle(v string) (style, order string, ok bool) {
	style, order, ok = strings.Cut(v, ", ")
	return style, order, ok
}
