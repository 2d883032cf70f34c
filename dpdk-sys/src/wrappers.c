/* Exported shims over DPDK static inline functions; see wrappers.h. */
#include "wrappers.h"

#include <string.h>

int vportd_errno(void)
{
	return rte_errno;
}

void vportd_set_errno(int value)
{
	rte_errno = value;
}

unsigned int vportd_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t vportd_rdtsc(void)
{
	return rte_rdtsc();
}

uint16_t vportd_rx_burst(uint16_t port_id, uint16_t queue_id,
			 struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t vportd_tx_burst(uint16_t port_id, uint16_t queue_id,
			 struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *vportd_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int vportd_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
			      unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void vportd_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

int vportd_pktmbuf_linearize(struct rte_mbuf *m)
{
	return rte_pktmbuf_linearize(m);
}

struct rte_mbuf *vportd_pktmbuf_copy_same_layout(const struct rte_mbuf *m)
{
	struct rte_mbuf *copy;

	if (m->nb_segs != 1)
		return NULL;
	copy = rte_pktmbuf_alloc(m->pool);
	if (copy == NULL)
		return NULL;
	/* Same pool, so same buf_len: data_off + data_len <= buf_len holds. */
	if ((uint32_t)m->data_off + m->data_len > copy->buf_len) {
		rte_pktmbuf_free(copy);
		return NULL;
	}
	copy->data_off = m->data_off;
	memcpy(rte_pktmbuf_mtod(copy, char *), rte_pktmbuf_mtod(m, const char *),
	       m->data_len);
	copy->data_len = m->data_len;
	copy->pkt_len = m->data_len;
	/* What rte_pktmbuf_copy() copies: header fields and offload flags. */
	__rte_pktmbuf_copy_hdr(copy, m);
	copy->ol_flags = m->ol_flags & ~(RTE_MBUF_F_INDIRECT | RTE_MBUF_F_EXTERNAL);
	return copy;
}

uint16_t vportd_mbuf_refcnt_read(const struct rte_mbuf *m)
{
	return rte_mbuf_refcnt_read(m);
}

uint16_t vportd_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value)
{
	return rte_mbuf_refcnt_update(m, value);
}
