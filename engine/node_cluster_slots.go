package engine

// Hash slots: ranges, their text forms, and the key → slot mapping.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ClusterSlots is the number of hash slots of a Redis Cluster.
const ClusterSlots = 16384

// SlotRange is an inclusive range of hash slots.
type SlotRange struct{ Start, End int }

// String returns "0-5460", or "7" for a single slot.
func (s SlotRange) String() string {
	if s.Start == s.End {
		return strconv.Itoa(s.Start)
	}
	return strconv.Itoa(s.Start) + "-" + strconv.Itoa(s.End)
}

// ParseSlotRanges parses ranges separated by commas or blanks ("0-5460,5461-10922"
// or "0-100 200-300"); each is "a-b" or a single slot. Slots must be within
// 0..16383 and start <= end. An empty string gives no ranges.
func ParseSlotRanges(s string) ([]SlotRange, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	out := make([]SlotRange, 0, len(fields))
	for _, f := range fields {
		a, b, isRange := strings.Cut(f, "-")
		start, err := parseSlot(a)
		if err != nil {
			return nil, fmt.Errorf("engine: slot range %q: %w", f, err)
		}
		end := start
		if isRange {
			if end, err = parseSlot(b); err != nil {
				return nil, fmt.Errorf("engine: slot range %q: %w", f, err)
			}
		}
		if start > end {
			return nil, fmt.Errorf("engine: slot range %q: start after end", f)
		}
		out = append(out, SlotRange{start, end})
	}
	return out, nil
}

func parseSlot(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= ClusterSlots {
		return 0, fmt.Errorf("slot %q is not within 0-%d", s, ClusterSlots-1)
	}
	return n, nil
}

// FormatSlotRanges returns the ranges sorted, overlapping and adjacent ones
// merged, comma-joined ("0-5460,10923-16383").
func FormatSlotRanges(ranges []SlotRange) string {
	merged := mergeSlotRanges(ranges)
	parts := make([]string, len(merged))
	for i, r := range merged {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// mergeSlotRanges sorts a copy of ranges and merges overlapping and adjacent ones.
func mergeSlotRanges(ranges []SlotRange) []SlotRange {
	rs := append([]SlotRange(nil), ranges...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
	var out []SlotRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.Start <= out[n-1].End+1 {
			if r.End > out[n-1].End {
				out[n-1].End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// SlotCount returns how many distinct slots the ranges cover.
func SlotCount(ranges []SlotRange) int {
	n := 0
	for _, r := range mergeSlotRanges(ranges) {
		n += r.End - r.Start + 1
	}
	return n
}

// HashSlot returns the hash slot of key as Redis computes it: CRC16 (XMODEM)
// of the key, or of its hash tag (the part between the first '{' and the
// next '}' when not empty), modulo 16384.
func HashSlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) & (ClusterSlots - 1)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), Redis Cluster's
// key hash.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
