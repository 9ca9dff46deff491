package kv

import (
	"strconv"
	"strings"
)

// The session statements drivers and the pool send, matched so that the session can answer
// them itself: SET, set_config, and the words after COMMIT and ROLLBACK.

// transactionTail reads the optional WORK or TRANSACTION after COMMIT or ROLLBACK.
func (p *parser) transactionTail() error {
	if !p.accept("WORK") {
		p.accept("TRANSACTION")
	}
	return p.end()
}

// set reads the SET statements drivers and the pool send.
func (p *parser) set() error {
	st := p.st
	st.verb, st.tag = vSet, "SET"
	if p.accept("LOCAL") {
		st.verb = vSetLocal
	} else {
		p.accept("SESSION")
	}
	if p.peek().is("TRANSACTION") || p.peek().is("CHARACTERISTICS") {
		// Isolation and access modes: there are no transactions for them to shape.
		st.verb = vSetNoop
		return nil
	}
	timeZone := p.peek().is("TIME")
	if err := p.settingName(false); err != nil {
		return err
	}
	if !timeZone && !p.acceptPunct("=") && !p.accept("TO") {
		return p.fail("expected = or TO at %s", p.describe())
	}
	if p.accept("DEFAULT") || st.name == "timezone" && p.accept("LOCAL") {
		st.deflt = true
		return p.end()
	}
	var parts []string
	for {
		t := p.next()
		switch {
		case t.kind == tString || t.kind == tQuoted:
			parts = append(parts, t.val)
		case t.kind == tWord || t.kind == tNumber:
			parts = append(parts, t.text)
		case (t.punct("-") || t.punct("+")) && p.peek().kind == tNumber:
			parts = append(parts, strings.TrimPrefix(t.text, "+")+p.next().text)
		default:
			return p.fail("expected a value at %s", strconv.Quote(t.text))
		}
		if !p.acceptPunct(",") {
			break
		}
	}
	st.value = strings.Join(parts, ", ")
	return p.end()
}

// settingName reads a parameter name (a.b allowed, TIME ZONE for timezone) into st.name,
// lower-cased; with allowAll, ALL leaves it "".
func (p *parser) settingName(allowAll bool) error {
	if allowAll && p.accept("ALL") {
		return nil
	}
	if p.accept("TIME") {
		p.st.name = "timezone"
		return p.expect("ZONE")
	}
	var name strings.Builder
	for {
		t := p.next()
		switch t.kind {
		case tWord:
			name.WriteString(strings.ToLower(t.text))
		case tQuoted:
			name.WriteString(t.val)
		default:
			return p.fail("expected a parameter name at %s", strconv.Quote(t.text))
		}
		if !p.acceptPunct(".") {
			break
		}
		name.WriteByte('.')
	}
	p.st.name = name.String()
	return nil
}

// setConfig reads SELECT [pg_catalog.]set_config('name', 'value', is_local)[, ...], which the
// pool sends to give a connection a client's startup parameters.
func (p *parser) setConfig() error {
	st := p.st
	st.verb, st.tag = vSetConfig, "SELECT"
	for {
		if p.accept("pg_catalog") {
			if err := p.expectPunct("."); err != nil {
				return err
			}
		}
		if err := p.expect("set_config"); err != nil {
			return err
		}
		if err := p.expectPunct("("); err != nil {
			return err
		}
		name, value := p.next(), token{}
		if name.kind != tString || !p.acceptPunct(",") {
			return p.fail("set_config takes literal arguments only")
		}
		if value = p.next(); value.kind != tString || !p.acceptPunct(",") {
			return p.fail("set_config takes literal arguments only")
		}
		if local := p.next(); !(local.is("true") || local.is("false")) {
			return p.fail("set_config takes literal arguments only")
		}
		if err := p.expectPunct(")"); err != nil {
			return err
		}
		st.pairs = append(st.pairs, [2]string{strings.ToLower(name.val), value.val})
		if !p.acceptPunct(",") {
			break
		}
	}
	return p.end()
}
