/* libpcap (libpcap-dev) for lb tap's filter: pcap_compile on a dead handle, pcap_offline_filter. */
#include <pcap/pcap.h>
