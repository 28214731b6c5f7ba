// The NIC's settings lb reads through SIOCETHTOOL: how many RX queues there are, and whether
// the RSS hash of UDP covers the ports (lb's advice to the operator).
#include "lb_xdp.h"
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* One SIOCETHTOOL request on ifname: 0 or -errno. */
static int ethtool(const char *ifname, void *request)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    ifr.ifr_data = request;
    int rc = ioctl(fd, SIOCETHTOOL, &ifr);
    int code = errno;
    close(fd);
    return rc < 0 ? -code : 0;
}

int lbx_rx_queue_count(const char *ifname)
{
    struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
    int rc = ethtool(ifname, &ch);
    if (rc < 0)
        return rc == -ENODEV ? -ENODEV : 1;
    int n = (int)(ch.combined_count + ch.rx_count);
    return n > 0 ? n : 1;
}

int lbx_udp_rss_uses_ports(const char *ifname, int ipv6)
{
    struct ethtool_rxnfc nfc;
    memset(&nfc, 0, sizeof nfc);
    nfc.cmd = ETHTOOL_GRXFH;
    nfc.flow_type = ipv6 ? UDP_V6_FLOW : UDP_V4_FLOW;
    int rc = ethtool(ifname, &nfc);
    if (rc < 0)
        return rc;
    return (nfc.data & (RXH_L4_B_0_1 | RXH_L4_B_2_3)) != 0;
}
