/*
 * sixboot's lint differential test (tests/lint_ipxe.rs): config/local/general.h of
 * the iPXE it builds for Linux userspace. Every command any build can have is on, so
 * "command not found" means what the lint's command-unknown rule means: no iPXE has
 * it. IPv6 and the download protocols the corpus fetches with are on too.
 */
#define NET_PROTO_IPV6
#define DOWNLOAD_PROTO_HTTP
#define DOWNLOAD_PROTO_HTTPS
#define DOWNLOAD_PROTO_TFTP
#define DOWNLOAD_PROTO_FTP
#define DOWNLOAD_PROTO_NFS
#define AUTOBOOT_CMD
#define CERT_CMD
#define CONFIG_CMD
#define CONSOLE_CMD
#define DIGEST_CMD
#define DHCP_CMD
#define FORM_CMD
#define IFMGMT_CMD
#define IMAGE_CMD
#define IMAGE_ARCHIVE_CMD
#define IMAGE_CRYPT_CMD
#define IMAGE_MEM_CMD
#define IMAGE_SET_CMD
#define IMAGE_TRUST_CMD
#define IPSTAT_CMD
#define LOGIN_CMD
#define LOTEST_CMD
#define MENU_CMD
#define NEIGHBOUR_CMD
#define NSLOOKUP_CMD
#define NTP_CMD
#define NVO_CMD
#define PARAM_CMD
#define PCI_CMD
#define PING_CMD
#define PROFSTAT_CMD
#define ROUTE_CMD
#define SANBOOT_CMD
#define SHELL_CMD
#define SYNC_CMD
#define TIME_CMD
#define VLAN_CMD
#define POWEROFF_CMD
#define REBOOT_CMD
