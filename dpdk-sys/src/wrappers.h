/*
 * vportd-dpdk-sys: C shims for what Rust cannot reach directly.
 *
 * DPDK's fast path is made of `static inline` functions (no symbol in the
 * shared libraries) and `rte_errno` is a thread-local macro; each is wrapped
 * here by an exported `vportd_*` function compiled by build.rs.
 */
#ifndef VPORTD_DPDK_WRAPPERS_H
#define VPORTD_DPDK_WRAPPERS_H

#include <stdint.h>

#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_bus.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_ethdev.h>
#include <rte_version.h>

/* rte_errno of the calling thread. */
int vportd_errno(void);
/* Sets rte_errno of the calling thread. */
void vportd_set_errno(int value);

/* rte_lcore_id(): the calling thread's lcore id, LCORE_ID_ANY if none. */
unsigned int vportd_lcore_id(void);
/* rte_rdtsc(). */
uint64_t vportd_rdtsc(void);

/* rte_eth_rx_burst(). */
uint16_t vportd_rx_burst(uint16_t port_id, uint16_t queue_id,
			 struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
/* rte_eth_tx_burst(). */
uint16_t vportd_tx_burst(uint16_t port_id, uint16_t queue_id,
			 struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

/* rte_pktmbuf_alloc(). */
struct rte_mbuf *vportd_pktmbuf_alloc(struct rte_mempool *mp);
/* rte_pktmbuf_alloc_bulk(). */
int vportd_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
			      unsigned int count);
/* rte_pktmbuf_free(): frees every segment of the chain. */
void vportd_pktmbuf_free(struct rte_mbuf *m);
/* rte_pktmbuf_linearize(): 0 on success, -1 when the first segment lacks room. */
int vportd_pktmbuf_linearize(struct rte_mbuf *m);
/*
 * Copies a single-segment mbuf into a new mbuf of the same pool, keeping the
 * same data offset (so the copy always fits in one segment) and the
 * metadata rte_pktmbuf_copy() copies. NULL when the pool is empty or `m`
 * has more than one segment.
 */
struct rte_mbuf *vportd_pktmbuf_copy_same_layout(const struct rte_mbuf *m);

/* rte_mbuf_refcnt_read(). */
uint16_t vportd_mbuf_refcnt_read(const struct rte_mbuf *m);
/* rte_mbuf_refcnt_update(): returns the new count. */
uint16_t vportd_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);

#endif /* VPORTD_DPDK_WRAPPERS_H */
