# shellcheck shell=sh
# apt_ensure WHO PKG...: installs those of the Debian packages PKG that are
# missing (apt-get update first; three tries, for the network), then fails
# unless every one is installed. WHO prefixes the messages. Sourced by
# test/setup.sh, test/clients/run.sh and test/checkpoint/run.sh.
apt_ensure() {
	_apt_who=$1
	shift
	_apt_missing=""
	for _apt_p in "$@"; do
		dpkg-query -W -f='${Status}' "$_apt_p" 2>/dev/null | grep -q "install ok installed" ||
			_apt_missing="$_apt_missing $_apt_p"
	done
	if [ -z "$_apt_missing" ]; then
		echo "==> $_apt_who: apt packages: all present"
		return 0
	fi
	echo "==> $_apt_who: apt packages: installing$_apt_missing"
	for _apt_try in 1 2 3; do
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
				--no-install-recommends $_apt_missing && break
		[ "$_apt_try" = 3 ] || { echo "==> $_apt_who: apt: retrying"; sleep 5; }
	done
	for _apt_p in $_apt_missing; do
		dpkg-query -W -f='${Status}' "$_apt_p" 2>/dev/null | grep -q "install ok installed" || {
			echo "$_apt_who: apt package $_apt_p did not install" >&2
			return 1
		}
	done
}
