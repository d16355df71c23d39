package emulator

import (
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Access strings and passwords of RBAC users, validated as AWS validates
// them when a user is created or modified, so a bad one is refused by the
// API (nothing changed) instead of failing later on the nodes. An access
// string is a Redis ACL rule list without passwords: AWS sets those from
// the Passwords parameter and refuses them (and reset, which would drop
// them) in the string. The rules Redis itself would refuse (an unknown
// command or category, a key pattern after allkeys, ...) are refused here
// with Redis's reason.

// accessRules is a parsed access string: whether the user is on (AWS: off
// unless the string says on), and the rest of its rules for ACL SETUSER.
type accessRules struct {
	enabled bool
	rules   string
}

// parseAccessString validates an access string and splits it into the
// user's on/off state and its other rules. A string without any channel
// rule gets allchannels first, as ElastiCache's acl-pubsub-default
// (allchannels) gives every user whose rules do not say otherwise.
func parseAccessString(s string) (accessRules, error) {
	var out accessRules
	var rules []string
	root := &selectorState{}
	tokens := strings.Fields(s)
	for i := 0; i < len(tokens); i++ {
		t := tokens[i]
		if strings.HasPrefix(t, "(") {
			// A selector (Redis 7): its rules up to the closing
			// parenthesis, which may be tokens later.
			j := i
			for j < len(tokens) && !strings.HasSuffix(tokens[j], ")") {
				j++
			}
			if j == len(tokens) {
				return accessRules{}, badAccessString("the selector %s is not closed with ')'", t)
			}
			sel := strings.Join(tokens[i:j+1], " ")
			inner := strings.Fields(sel[1 : len(sel)-1])
			st := &selectorState{}
			for _, r := range inner {
				if err := st.rule(r, true); err != nil {
					return accessRules{}, err
				}
			}
			rules = append(rules, sel)
			i = j
			continue
		}
		switch strings.ToLower(t) {
		case "on":
			out.enabled = true
			continue
		case "off":
			out.enabled = false
			continue
		case "clearselectors":
			rules = append(rules, t)
			continue
		}
		if err := root.rule(t, false); err != nil {
			return accessRules{}, err
		}
		rules = append(rules, t)
	}
	if !root.channelRule {
		rules = append([]string{"allchannels"}, rules...)
	}
	out.rules = strings.Join(rules, " ")
	return out, nil
}

// selectorState follows the key and channel rules of the root permissions
// or of one selector, for Redis's "pattern after *" check.
type selectorState struct {
	allKeys, allChannels bool
	// channelRule: the rules set the channels themselves.
	channelRule bool
}

// rule validates one rule of the root permissions or of a selector
// (inSelector: no user-level rule such as on, off or clearselectors).
func (st *selectorState) rule(t string, inSelector bool) error {
	lower := strings.ToLower(t)
	switch {
	case t == "":
		return nil
	case strings.HasPrefix(t, ">") || strings.HasPrefix(t, "<") || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "!") ||
		lower == "nopass" || lower == "resetpass":
		// The rule itself is not echoed: it may hold a password.
		return invalidParameterValue("Access strings cannot hold passwords or password rules (>, <, #, !, nopass, resetpass); set them with Passwords, NoPasswordRequired or AuthenticationMode.")
	case lower == "reset":
		return badAccessString("reset is not allowed: it would remove the passwords ElastiCache manages")
	case inSelector && (lower == "on" || lower == "off" || lower == "clearselectors"):
		return badAccessString("%s is not allowed in a selector", t)
	case lower == "allkeys":
		st.allKeys = true
	case lower == "resetkeys":
		st.allKeys = false
	case lower == "allchannels":
		st.allChannels, st.channelRule = true, true
	case lower == "resetchannels":
		st.allChannels, st.channelRule = false, true
	case lower == "allcommands", lower == "nocommands":
	case strings.HasPrefix(t, "~") || strings.HasPrefix(t, "%"):
		pattern, all, err := keyRule(t)
		if err != nil {
			return err
		}
		if st.allKeys {
			return badAccessString("adding the pattern %s after the * pattern (or the allkeys flag) is not valid and does not have any effect; try resetkeys to start with an empty list of patterns", t)
		}
		if all && pattern == "*" {
			st.allKeys = true
		}
	case strings.HasPrefix(t, "&"):
		st.channelRule = true
		if st.allChannels {
			return badAccessString("adding the pattern %s after the * pattern (or the allchannels flag) is not valid and does not have any effect; try resetchannels to start with an empty list of channels", t)
		}
		if t == "&*" {
			st.allChannels = true
		}
	case strings.HasPrefix(t, "+") || strings.HasPrefix(t, "-"):
		return commandRule(t)
	default:
		return badAccessString("unknown rule %s", t)
	}
	return nil
}

// keyRule checks a key pattern rule: ~pattern or %R~, %W~, %RW~pattern.
// all reports read and write permission.
func keyRule(t string) (pattern string, all bool, err error) {
	if strings.HasPrefix(t, "~") {
		return t[1:], true, nil
	}
	flags, pattern, ok := strings.Cut(t[1:], "~")
	if !ok || flags == "" {
		return "", false, badAccessString("the key permission %s must be %%R~, %%W~ or %%RW~ followed by a pattern", t)
	}
	var r, w bool
	for _, c := range strings.ToUpper(flags) {
		switch c {
		case 'R':
			r = true
		case 'W':
			w = true
		default:
			return "", false, badAccessString("the key permission %s must be %%R~, %%W~ or %%RW~ followed by a pattern", t)
		}
	}
	return pattern, r && w, nil
}

// commandRule checks +cmd, -cmd, +cmd|sub, -cmd|sub (sub a subcommand of a
// container command), +cmd|firstarg (a command without subcommands) and
// +@category, -@category.
func commandRule(t string) error {
	body := strings.ToLower(t[1:])
	if cat, ok := strings.CutPrefix(body, "@"); ok {
		if cat != "all" && !slices.Contains(strings.Fields(aclCategories), cat) {
			return badAccessString("unknown command category %s in %s", cat, t)
		}
		return nil
	}
	cmd, sub, hasSub := strings.Cut(body, "|")
	if !knownCommand(cmd) {
		return badAccessString("unknown command %s in %s", cmd, t)
	}
	if !hasSub {
		return nil
	}
	if sub == "" {
		return badAccessString("%s names no subcommand", t)
	}
	if strings.Contains(aclCommands, " "+cmd+"|") {
		if !knownCommand(cmd + "|" + sub) {
			return badAccessString("unknown subcommand %s of %s in %s", sub, cmd, t)
		}
		return nil
	}
	if t[0] == '-' {
		return badAccessString("%s: a first argument can only be allowed (+), not blocked", t)
	}
	return nil
}

func knownCommand(name string) bool {
	return name != "" && strings.Contains(aclCommands, " "+name+" ")
}

// badAccessString is the answer to an access string Redis would refuse.
func badAccessString(format string, args ...any) error {
	return invalidParameterValue("Invalid access string: "+format+".", args...)
}

// authentication is how a user authenticates, as a request asks for it:
// noPassword, or the hashes of its passwords.
type authentication struct {
	noPassword bool
	hashes     []string
}

// readAuthentication reads a user's authentication from AuthenticationMode
// or from Passwords and NoPasswordRequired, validating the passwords and
// keeping only their hashes. create requires one (a modification may
// leave it unchanged: nothing set returns the zero value).
func readAuthentication(mode *types.AuthenticationMode, passwords []string, noPass *bool, create bool) (authentication, error) {
	if mode != nil {
		if len(passwords) > 0 || aws.ToBool(noPass) {
			return authentication{}, invalidParameterCombination("AuthenticationMode cannot be used together with Passwords or NoPasswordRequired.")
		}
		switch mode.Type {
		case types.InputAuthenticationTypePassword:
			if len(mode.Passwords) == 0 {
				return authentication{}, invalidParameterValue("At least one password is required when AuthenticationMode Type is password.")
			}
			return hashPasswords(mode.Passwords)
		case types.InputAuthenticationTypeNoPassword:
			if len(mode.Passwords) > 0 {
				return authentication{}, invalidParameterCombination("Passwords cannot be given when AuthenticationMode Type is no-password-required.")
			}
			return authentication{noPassword: true}, nil
		case types.InputAuthenticationTypeIam:
			return authentication{}, notImplemented("IAM authentication of users (AuthenticationMode Type iam)")
		case "":
			return authentication{}, mustNotBeBlank("AuthenticationMode.Type")
		}
		return authentication{}, invalidParameterValue("Invalid value for AuthenticationMode Type: %s. Valid values are password, no-password-required and iam.", mode.Type)
	}
	switch {
	case aws.ToBool(noPass) && len(passwords) > 0:
		return authentication{}, invalidParameterCombination("Passwords cannot be given when NoPasswordRequired is true.")
	case aws.ToBool(noPass):
		return authentication{noPassword: true}, nil
	case len(passwords) > 0:
		return hashPasswords(passwords)
	case create:
		return authentication{}, noPasswordProvided()
	}
	return authentication{}, nil
}

func noPasswordProvided() error {
	return invalidParameterValue("No password was provided. If you want to create/update the user without password, please use the NoPasswordRequired flag.")
}

// hashPasswords validates 1 or 2 passwords (AWS's rules for AUTH tokens:
// 16 to 128 printable ASCII characters, none of space, '"', '/' or '@')
// and returns their hashes. No message names a password.
func hashPasswords(passwords []string) (authentication, error) {
	if len(passwords) > 2 {
		return authentication{}, invalidParameterValue("A user can have at most 2 passwords.")
	}
	a := authentication{}
	for _, p := range passwords {
		if len(p) < 16 || len(p) > 128 {
			return authentication{}, invalidParameterValue("Passwords length must be between 16-128 characters.")
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '/' || c == '@' {
				return authentication{}, invalidParameterValue("Passwords must contain only printable ASCII characters other than spaces, '\"', '/' and '@'.")
			}
		}
		a.hashes = append(a.hashes, engine.PasswordHash(p))
	}
	return a, nil
}

// aclCategories are Redis 7.0's ACL command categories (ACL CAT).
const aclCategories = "keyspace read write set sortedset list hash string bitmap hyperloglog geo stream pubsub admin fast slow blocking dangerous connection transaction scripting"

// aclCommands are the commands and container|subcommands of Redis 7.0
// (COMMAND LIST), space-separated with a space at each end.
const aclCommands = " " +
	"acl acl|cat acl|deluser acl|dryrun acl|genpass acl|getuser acl|help acl|list acl|load acl|log " +
	"acl|save acl|setuser acl|users acl|whoami append asking auth bgrewriteaof bgsave bitcount " +
	"bitfield bitfield_ro bitop bitpos blmove blmpop blpop brpop brpoplpush bzmpop bzpopmax bzpopmin " +
	"client client|caching client|getname client|getredir client|help client|id client|info " +
	"client|kill client|list client|no-evict client|pause client|reply client|setname " +
	"client|tracking client|trackinginfo client|unblock client|unpause cluster cluster|addslots " +
	"cluster|addslotsrange cluster|bumpepoch cluster|count-failure-reports cluster|countkeysinslot " +
	"cluster|delslots cluster|delslotsrange cluster|failover cluster|flushslots cluster|forget " +
	"cluster|getkeysinslot cluster|help cluster|info cluster|keyslot cluster|links cluster|meet " +
	"cluster|myid cluster|nodes cluster|replicas cluster|replicate cluster|reset cluster|saveconfig " +
	"cluster|set-config-epoch cluster|setslot cluster|shards cluster|slaves cluster|slots command " +
	"command|count command|docs command|getkeys command|getkeysandflags command|help command|info " +
	"command|list config config|get config|help config|resetstat config|rewrite config|set copy " +
	"dbsize debug decr decrby del discard dump echo eval eval_ro evalsha evalsha_ro exec exists " +
	"expire expireat expiretime failover fcall fcall_ro flushall flushdb function function|delete " +
	"function|dump function|flush function|help function|kill function|list function|load " +
	"function|restore function|stats geoadd geodist geohash geopos georadius georadius_ro " +
	"georadiusbymember georadiusbymember_ro geosearch geosearchstore get getbit getdel getex " +
	"getrange getset hdel hello hexists hget hgetall hincrby hincrbyfloat hkeys hlen hmget hmset " +
	"hrandfield hscan hset hsetnx hstrlen hvals incr incrby incrbyfloat info keys lastsave latency " +
	"latency|doctor latency|graph latency|help latency|histogram latency|history latency|latest " +
	"latency|reset lcs lindex linsert llen lmove lmpop lolwut lpop lpos lpush lpushx lrange lrem " +
	"lset ltrim memory memory|doctor memory|help memory|malloc-stats memory|purge memory|stats " +
	"memory|usage mget migrate module module|help module|list module|load module|loadex " +
	"module|unload monitor move mset msetnx multi object object|encoding object|freq object|help " +
	"object|idletime object|refcount persist pexpire pexpireat pexpiretime pfadd pfcount pfdebug " +
	"pfmerge pfselftest ping psetex psubscribe psync pttl publish pubsub pubsub|channels pubsub|help " +
	"pubsub|numpat pubsub|numsub pubsub|shardchannels pubsub|shardnumsub punsubscribe quit randomkey " +
	"readonly readwrite rename renamenx replconf replicaof reset restore restore-asking role rpop " +
	"rpoplpush rpush rpushx sadd save scan scard script script|debug script|exists script|flush " +
	"script|help script|kill script|load sdiff sdiffstore select set setbit setex setnx setrange " +
	"shutdown sinter sintercard sinterstore sismember slaveof slowlog slowlog|get slowlog|help " +
	"slowlog|len slowlog|reset smembers smismember smove sort sort_ro spop spublish srandmember srem " +
	"sscan ssubscribe strlen subscribe substr sunion sunionstore sunsubscribe swapdb sync time touch " +
	"ttl type unlink unsubscribe unwatch wait watch xack xadd xautoclaim xclaim xdel xgroup " +
	"xgroup|create xgroup|createconsumer xgroup|delconsumer xgroup|destroy xgroup|help xgroup|setid " +
	"xinfo xinfo|consumers xinfo|groups xinfo|help xinfo|stream xlen xpending xrange xread " +
	"xreadgroup xrevrange xsetid xtrim zadd zcard zcount zdiff zdiffstore zincrby zinter zintercard " +
	"zinterstore zlexcount zmpop zmscore zpopmax zpopmin zrandmember zrange zrangebylex " +
	"zrangebyscore zrangestore zrank zrem zremrangebylex zremrangebyrank zremrangebyscore zrevrange " +
	"zrevrangebylex zrevrangebyscore zrevrank zscan zscore zunion zunionstore "
