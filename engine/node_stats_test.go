package engine

import "testing"

func TestParseNodeStats(t *testing.T) {
	text := "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.2\r\nmaster_port:6379\r\nmaster_link_status:up\r\n" +
		"slave_repl_offset:420\r\nmaster_repl_offset:420\r\n" +
		"# Memory\r\nused_memory:1048576\r\nmaxmemory:4194304\r\ndbused:7\r\n" +
		"# Keyspace\r\ndb0:keys=12,expires=1,avg_ttl=0\r\ndb3:keys=3,expires=0,avg_ttl=0\r\n"
	st, err := ParseNodeStats(text)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Replication.IsReplica() || st.Replication.ReplicaOffset != 420 || !st.Replication.LinkUp {
		t.Errorf("replication = %+v", st.Replication)
	}
	if st.UsedMemory != 1048576 || st.MaxMemory != 4194304 || st.Keys != 15 {
		t.Errorf("stats = used %d max %d keys %d, want 1048576 4194304 15", st.UsedMemory, st.MaxMemory, st.Keys)
	}
	if _, err := ParseNodeStats("# Memory\r\nused_memory:1\r\n"); err == nil {
		t.Error("INFO without a role parsed without an error")
	}
}
