package mysql

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

func TestCanonicalToMySQL(t *testing.T) {
	cases := []struct {
		typ  model.Type
		key  bool
		want string
	}{
		{model.Type{Kind: model.KindBool}, false, "tinyint(1)"},
		{model.Type{Kind: model.KindInt32, Native: "integer"}, false, "int"},
		{model.Type{Kind: model.KindInt64, Native: "INTEGER"}, false, "bigint"}, // SQLite's INTEGER is 64-bit
		{model.Type{Kind: model.KindDecimal}, false, "decimal(65,30)"},
		{model.Type{Kind: model.KindDecimal, Precision: 20, Native: "bigint(20) unsigned"}, false, "bigint(20) unsigned"},
		{model.Type{Kind: model.KindDecimal, Precision: 12, Scale: 3, Native: "numeric(12,3)"}, false, "decimal(12,3)"},
		{model.Type{Kind: model.KindFloat32, Native: "real"}, false, "float"}, // PostgreSQL's real is 4 bytes, MySQL's 8
		{model.Type{Kind: model.KindText}, false, "longtext"},
		{model.Type{Kind: model.KindText, Native: "text"}, false, "longtext"}, // not MySQL's 64 KiB TEXT
		{model.Type{Kind: model.KindText}, true, "varchar(768)"},
		{model.Type{Kind: model.KindText, Length: 20}, false, "varchar(20)"},
		{model.Type{Kind: model.KindText, Length: 20, Native: "character varying(20)"}, true, "varchar(20)"},
		{model.Type{Kind: model.KindText, Length: 5000}, false, "longtext"},
		{model.Type{Kind: model.KindText, Native: "mediumtext"}, false, "mediumtext"},
		{model.Type{Kind: model.KindText, Native: "mediumtext"}, true, "varchar(768)"},
		{model.Type{Kind: model.KindBytes, Native: "bytea"}, false, "longblob"},
		{model.Type{Kind: model.KindBytes}, true, "varbinary(3072)"},
		{model.Type{Kind: model.KindJSON, Native: "jsonb"}, false, "json"},
		{model.Type{Kind: model.KindUUID, Native: "uuid"}, false, "char(36)"}, // MariaDB's UUID refuses some of PostgreSQL's uuid values
		{model.Type{Kind: model.KindUUID}, false, "char(36)"},
		{model.Type{Kind: model.KindTime}, false, "time(6)"},
		{model.Type{Kind: model.KindTimeTZ}, false, "varchar(32)"},
		{model.Type{Kind: model.KindTimestamp, Native: "timestamp without time zone"}, false, "datetime(6)"},
		{model.Type{Kind: model.KindTimestamp, Native: "TIMESTAMP"}, false, "datetime(6)"}, // SQLite's TIMESTAMP is naive
		{model.Type{Kind: model.KindTimestampTZ, Native: "timestamp with time zone"}, false, "datetime(6)"},
		{model.Type{Kind: model.KindTimestampTZ, Native: "timestamp(6)"}, false, "timestamp(6)"},
		{model.Type{Kind: model.KindInterval}, false, "varchar(64)"},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindInt32}}, false, "json"},
		{model.Type{Kind: model.KindEnum, EnumValues: []string{"a", "it's"}}, false, "enum('a','it''s')"},
		{model.Type{Kind: model.KindEnum}, false, "varchar(255)"},
		{model.Type{Kind: model.KindInet}, false, "varchar(43)"},
		{model.Type{Kind: model.KindMACAddr}, false, "varchar(23)"},
	}
	for _, c := range cases {
		got, err := columnType(c.typ, c.key)
		if err != nil {
			t.Errorf("%s (native %q, key %v): %v", c.typ, c.typ.Native, c.key, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("%s (native %q, key %v): got %s, want %s", c.typ, c.typ.Native, c.key, got, c.want)
		}
	}
	if _, err := columnType(model.Type{Kind: model.KindDecimal, Precision: 80, Scale: 2}, false); err == nil {
		t.Error("decimal(80,2) has a MySQL mapping")
	}
}
