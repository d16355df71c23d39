package emulator

// DefaultNodeQuota is AWS's default quota of cache nodes per account and
// region ("Nodes per Region").
const DefaultNodeQuota = 300

// nodeCount is how many cache nodes r holds, whatever their state: a node
// being created or deleted still runs. The caller holds r.mu.
func (r *region) nodeCount() int {
	n := 0
	for _, cl := range r.clusters {
		n += len(cl.nodes)
	}
	return n
}

// checkNodeQuota refuses a request that would take r past the node quota,
// with AWS's fault and message; the caller holds r.mu and checks before
// changing anything.
func (e *Emulator) checkNodeQuota(r *region, adding int) error {
	if have := r.nodeCount(); have+adding > e.opts.NodeQuota {
		return nodeQuotaForCustomerExceeded(e.opts.NodeQuota, have, adding)
	}
	return nil
}
