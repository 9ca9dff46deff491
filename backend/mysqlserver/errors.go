package mysqlserver

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// MySQL error numbers this package sends that go-mysql's table lacks or names differently.
const (
	erUnknownSystemVariable = 1193
	erNotSupportedYet       = mysql.ER_NOT_SUPPORTED_YET // 1235
	erBadDB                 = mysql.ER_BAD_DB_ERROR      // 1049
	erUnknownCom            = mysql.ER_UNKNOWN_COM_ERROR // 1047
	erUnknownStmtHandler    = mysql.ER_UNKNOWN_STMT_HANDLER
	erSyntax                = mysql.ER_PARSE_ERROR // 1064
	erReadOnlyVariable      = 1238
	erWrongValueForVar      = 1231
	erMalformedPacket       = 1835
)

// byState is the one table from the SQLSTATEs the backends produce (PostgreSQL's, as their
// PostgreSQL sessions send them) to the MySQL error a MySQL client sees: its number and its
// SQLSTATE. A state missing here is reported as 1105 ER_UNKNOWN_ERROR with the state as given.
var byState = map[string]struct {
	code  uint16
	state string
}{
	"08P01": {1047, "08S01"}, // protocol_violation: ER_UNKNOWN_COM_ERROR
	"0A000": {erNotSupportedYet, "42000"},
	"22001": {1406, "22001"}, // string_data_right_truncation: ER_DATA_TOO_LONG
	"22003": {1690, "22003"}, // numeric_value_out_of_range: ER_DATA_OUT_OF_RANGE
	"2201W": {1210, "HY000"}, // invalid_row_count_in_limit_clause: ER_WRONG_ARGUMENTS
	"22023": {1210, "HY000"}, // invalid_parameter_value
	"22025": {1210, "HY000"}, // invalid_escape_sequence
	"22P02": {1366, "HY000"}, // invalid_text_representation: ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
	"22P03": {1366, "HY000"}, // invalid_binary_representation
	"23000": {1062, "23000"}, // integrity_constraint_violation (SQLite's other constraints)
	"23502": {1048, "23000"}, // not_null_violation: ER_BAD_NULL_ERROR
	"23503": {1452, "23000"}, // foreign_key_violation: ER_NO_REFERENCED_ROW_2
	"23505": {1062, "23000"}, // unique_violation: ER_DUP_ENTRY
	"23514": {3819, "HY000"}, // check_violation: ER_CHECK_CONSTRAINT_VIOLATED
	"25001": {1105, "25001"}, // active_sql_transaction
	"25006": {1792, "25006"}, // read_only_sql_transaction: ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
	"25P01": {1105, "25000"}, // no_active_sql_transaction
	"25P02": {1105, "25000"}, // in_failed_sql_transaction
	"26000": {erUnknownStmtHandler, "HY000"},
	"34000": {erUnknownStmtHandler, "HY000"},
	"3B001": {1305, "42000"}, // invalid_savepoint_specification: ER_SP_DOES_NOT_EXIST
	"40001": {1213, "40001"}, // serialization_failure: ER_LOCK_DEADLOCK, retry the transaction
	"42501": {1142, "42000"}, // insufficient_privilege: ER_TABLEACCESS_DENIED_ERROR
	"42601": {erSyntax, "42000"},
	"42702": {1052, "23000"}, // ambiguous_column: ER_NON_UNIQ_ERROR
	"42703": {1054, "42S22"}, // undefined_column: ER_BAD_FIELD_ERROR
	"42704": {1091, "42000"}, // undefined_object (index, trigger): ER_CANT_DROP_FIELD_OR_KEY
	"42710": {1359, "HY000"}, // duplicate_object (trigger): ER_TRG_ALREADY_EXISTS
	"42804": {1366, "HY000"}, // datatype_mismatch
	"42883": {1305, "42000"}, // undefined_function: ER_SP_DOES_NOT_EXIST
	"42P01": {1146, "42S02"}, // undefined_table: ER_NO_SUCH_TABLE
	"42P03": {1105, "HY000"},
	"42P05": {1105, "HY000"},
	"42P07": {1050, "42S01"}, // duplicate_table: ER_TABLE_EXISTS_ERROR
	"53100": {1021, "HY000"}, // disk_full: ER_DISK_FULL
	"53200": {1037, "HY001"}, // out_of_memory: ER_OUTOFMEMORY
	"54000": {1406, "22001"}, // program_limit_exceeded (a value too large): ER_DATA_TOO_LONG
	"54023": {1058, "21S01"}, // too_many_arguments: ER_WRONG_VALUE_COUNT
	"55P02": {erReadOnlyVariable, "HY000"},
	"55P03": {1205, "HY000"}, // lock_not_available: ER_LOCK_WAIT_TIMEOUT
	"57014": {1317, "70100"}, // query_canceled: ER_QUERY_INTERRUPTED
	"57P01": {1053, "08S01"}, // admin_shutdown: ER_SERVER_SHUTDOWN
	"58030": {1030, "HY000"}, // io_error: ER_GET_ERRNO
	"P0001": {1644, "45000"}, // raise_exception (RAISE in a trigger): ER_SIGNAL_EXCEPTION
	"XX000": {1105, "HY000"}, // internal_error: ER_UNKNOWN_ERROR
	"XX001": {1030, "HY000"}, // data_corrupted
}

func init() {
	for st, e := range byState {
		if len(st) != 5 || len(e.state) != 5 || e.code < 1000 {
			panic(fmt.Sprintf("mysqlserver: bad entry for SQLSTATE %s", st))
		}
	}
}

// Error is what a MySQL client sees of a failure that a backend reports with a SQLSTATE (as its
// PostgreSQL session would) and a message fit for a client.
func Error(sqlstate, msg string) *mysql.MyError {
	if e, ok := byState[sqlstate]; ok {
		return &mysql.MyError{Code: e.code, State: e.state, Message: msg}
	}
	return &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: sqlstate, Message: msg}
}

// Mapped reports whether a SQLSTATE has a MySQL error of its own; the backends' tests check
// that every state they send has one.
func Mapped(sqlstate string) bool {
	_, ok := byState[sqlstate]
	return ok
}

func errorf(code uint16, state, format string, args ...any) *mysql.MyError {
	return &mysql.MyError{Code: code, State: state, Message: fmt.Sprintf(format, args...)}
}
