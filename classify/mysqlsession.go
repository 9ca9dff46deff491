package classify

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// MySQLSession is what a MySQL text does to the state of its session that later answers
// depend on, as a result cache must know it.
type MySQLSession struct {
	// Names is the character set (and collation) SET NAMES or SET CHARACTER SET chose, lower
	// case, "" if the text chooses none.
	Names string
	// Use is the database a USE statement selects, "" if none.
	Use string
	// Vars says the text sets session system variables (SET time_zone = ..., SET
	// @@SESSION.sql_mode = CONCAT(@@sql_mode, ...)) other than autocommit: the same text run
	// again on a new session, after the same others in order, gives it the same values.
	Vars bool
	// Other says the text may change anything else: a user or global variable, a temporary
	// table, LOCK TABLES, an SQL-level PREPARE, the next transaction's characteristics, a user
	// variable assigned in a query (@x := ...); and any text that does not parse, or holds
	// several statements of which one changes the session.
	Other bool
}

// ClassifyMySQLSession reports what sql does to its session's state. Changing autocommit is
// not reported: it shows in the status flags of the answer. Safe for concurrent use.
func ClassifyMySQLSession(sql string) MySQLSession {
	stmts, done, err := parseMySQL(sql)
	defer done() // the tree lives in the parser's memory: not before the walk
	if err != nil {
		return MySQLSession{Other: true}
	}
	var s MySQLSession
	v := &assignVisitor{}
	for _, n := range stmts {
		switch n := n.(type) {
		case *ast.SetStmt:
			for _, va := range n.Variables {
				switch {
				case va.Name == ast.SetNames || va.Name == ast.SetCharset:
					cs, ok := exprText(va.Value)
					s.Names, s.Other = va.Name+" "+cs, s.Other || !ok
					if va.ExtendValue != nil {
						coll, ok := exprText(va.ExtendValue)
						s.Names, s.Other = s.Names+" "+coll, s.Other || !ok
					}
				case va.IsSystem && !va.IsGlobal && strings.EqualFold(va.Name, "autocommit"):
				case va.IsSystem && !va.IsGlobal && !strings.Contains(strings.ToLower(va.Name), "one_shot"):
					s.Vars = true
				default:
					s.Other = true
				}
			}
		case *ast.UseStmt:
			s.Use = n.DBName
		case *ast.CreateTableStmt:
			s.Other = s.Other || n.TemporaryKeyword != ast.TemporaryNone
		case *ast.DropTableStmt:
			s.Other = s.Other || n.TemporaryKeyword != ast.TemporaryNone
		case *ast.LockTablesStmt, *ast.UnlockTablesStmt, *ast.PrepareStmt, *ast.DeallocateStmt,
			*ast.SetRoleStmt, *ast.SetSessionStatesStmt:
			s.Other = true
		case *ast.SelectStmt:
			if n.SelectIntoOpt != nil {
				s.Other = true
			}
		}
		n.Accept(v)
	}
	s.Other = s.Other || v.assigns
	if len(stmts) > 1 && (s.Names != "" || s.Use != "" || s.Vars) {
		s.Other = true // which of them ran is known only from the answers
	}
	s.Names = strings.ToLower(s.Names)
	return s
}

// assignVisitor finds user variables assigned inside a query (@x := ...).
type assignVisitor struct{ assigns bool }

func (v *assignVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if e, ok := n.(*ast.VariableExpr); ok && e.Value != nil {
		v.assigns = true
	}
	return n, v.assigns
}

func (v *assignVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// exprText is the text of a SET NAMES operand: a name, a string or DEFAULT.
// ok is false for any other expression.
func exprText(e ast.Node) (string, bool) {
	switch e := e.(type) {
	case nil, *ast.DefaultExpr:
		return "default", true
	case ast.ValueExpr:
		return e.GetString(), true
	}
	return "", false
}
