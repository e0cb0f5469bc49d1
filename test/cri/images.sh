#!/bin/bash
# test/cri/images.sh REGISTRY: build, offline, every image critest pulls and
# push it to the registry at REGISTRY (host:port, plain HTTP), under the
# repository path it has upstream. containerd then resolves the upstream
# names through certs.d/<host>/hosts.toml files that point at REGISTRY (see
# test/cri/containerd.sh), so names, RepoTags and RepoDigests stay what
# critest expects.
#
# The image names are read from cri-tools' own source (the module in the Go
# module cache), not written down here: each name is matched to a builder by
# its repository, and a name no builder knows fails the build. Images pinned
# by digest cannot be rebuilt; they are listed as such and left out.
#
# The base layer is Debian's *dynamic* busybox with the libc files it needs,
# every applet a hard link: Debian's busybox-static runs applets in-process
# (no exec), and a symlinked /bin/ls would make the masked-paths spec mask
# busybox itself. pgrep and ipcs, missing from Debian's busybox, are small
# scripts; nginx, nonewprivs and pause are small static C programs in
# test/cri/images/.
#
# Environment: CRI_TOOLS_VERSION (v1.37.0), CRI_SANDBOX_IMAGE (the image
# containerd runs as the pod sandbox), CRI_OUT (_output/cri).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
REGISTRY=${1:?usage: $0 REGISTRY-HOST:PORT}
CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
SANDBOX_IMAGE=${CRI_SANDBOX_IMAGE:-registry.k8s.io/pause:3.10.1}
OUT=${CRI_OUT:-$repo/_output/cri}
WORK=$OUT/images

log() { printf '==> cri images: %s\n' "$*"; }
die() { printf 'cri images: error: %s\n' "$*" >&2; exit 1; }

case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) PATH=/usr/local/go/bin:$PATH ;; esac
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

# --- the names critest uses ---------------------------------------------------

# critest_images: one image reference a line, from cri-tools' source.
critest_images() {
	local src fw reg e2e
	src=$(go mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" | jq -r .Dir)
	[ -d "$src/pkg/validate" ] || die "cri-tools $CRI_TOOLS_VERSION source not found"
	fw=$(sed -n 's/^\s*DefaultRegistryPrefix = "\(.*\)"/\1/p' "$src/pkg/framework/test_context.go")
	e2e=$(sed -n 's/^\s*DefaultRegistryE2ETestImagesPrefix = DefaultRegistryPrefix + "\(.*\)"/\1/p' "$src/pkg/framework/test_context.go")
	reg=$(sed -n 's/^\s*registry = "\(.*\)"/\1/p' "$src/pkg/validate/consts.go")
	[ -n "$fw" ] && [ -n "$e2e" ] && [ -n "$reg" ] || die "cannot read the registry prefixes from cri-tools' source"
	cat "$src"/pkg/validate/*.go "$src"/pkg/framework/util.go |
		grep -v '^\s*//' |
		sed -n -e 's/.*\(framework\.\)\{0,1\}DefaultRegistryE2ETestImagesPrefix + "\([^"]*\)".*/E2E\2/p' \
			-e 's/.*[^a-zA-Z]registry + "\([^"]*\)" + runtime\.GOARCH.*/REG\1amd64/p' \
			-e 's/.*[^a-zA-Z]registry + "\([^"]*\)".*/REG\1/p' \
			-e 's/^\s*"\([a-z0-9.-]*\.[a-z]*\/[^" ]*:[^" ]*\)",\s*$/\1/p' |
		sed -e "s#^E2E#$fw$e2e#" -e "s#^REG#$reg#" |
		grep -v '/win-' | sort -u
}

# --- blobs, layers, images ----------------------------------------------------

blobs=$WORK/blobs
put() { # put FILE MEDIATYPE: store FILE as a blob, print its descriptor
	local d size
	d=$(sha256sum "$1" | cut -d' ' -f1)
	size=$(stat -c %s "$1")
	mv "$1" "$blobs/$d"
	printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$d" "$size"
}

# layer DIR: a deterministic layer tar of DIR; prints "DESCRIPTOR DIFFID".
layer() {
	local t=$WORK/layer.tar desc
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$1" -cf "$t" .
	local diff="sha256:$(sha256sum "$t" | cut -d' ' -f1)"
	desc=$(put "$t" application/vnd.oci.image.layer.v1.tar)
	printf '%s %s\n' "$desc" "$diff"
}

# image NAME CONFIG-JSON LAYER...: write the image config and manifest; push
# both with the layers to REGISTRY as NAME. LAYER is a "DESCRIPTOR DIFFID"
# line from layer().
image() {
	local name=$1 cfg=$2 descs=() diffs=() l cdesc mfile
	shift 2
	for l in "$@"; do descs+=("${l% *}"); diffs+=("\"${l#* }\""); done
	jq -cn --argjson c "$cfg" --argjson d "[$(IFS=,; echo "${diffs[*]}")]" \
		'{architecture:"amd64",os:"linux",created:"1970-01-01T00:00:00Z",config:$c,
		  rootfs:{type:"layers",diff_ids:$d},
		  history:[{created:"1970-01-01T00:00:00Z",created_by:"test/cri/images.sh"}]}' >"$WORK/config.json"
	cdesc=$(put "$WORK/config.json" application/vnd.oci.image.config.v1+json)
	mfile=$WORK/manifest.json
	jq -cn --argjson c "$cdesc" --argjson l "[$(IFS=,; echo "${descs[*]}")]" \
		'{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",config:$c,layers:$l}' >"$mfile"
	push "$name" "$mfile" "$cdesc" "${descs[@]}"
}

# --- registry API (distribution v2 over plain HTTP) ---------------------------

push_blob() { # push_blob REPO DIGEST
	local repo=$1 digest=$2 loc
	curl -fsS -o /dev/null -I "http://$REGISTRY/v2/$repo/blobs/$digest" 2>/dev/null && return 0
	loc=$(curl -fsS -D - -o /dev/null -X POST "http://$REGISTRY/v2/$repo/blobs/uploads/" |
		sed -n 's/^[Ll]ocation: *\(.*\)\r$/\1/p')
	[ -n "$loc" ] || die "no upload location for $repo"
	case $loc in /*) loc="http://$REGISTRY$loc" ;; esac
	case $loc in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
	curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
		--data-binary "@$blobs/${digest#sha256:}" "$loc" || die "blob upload $repo@$digest failed"
}

push() { # push NAME MANIFEST-FILE DESCRIPTOR...
	local name=$1 mfile=$2 ref path d
	shift 2
	ref=${name#*/}            # drop the registry host
	path=${ref%:*}; tag=${ref##*:}
	[ "$path" != "$ref" ] || { path=$ref; tag=latest; }
	for d in "$@"; do push_blob "$path" "$(jq -r .digest <<<"$d")"; done
	curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary "@$mfile" "http://$REGISTRY/v2/$path/manifests/$tag" || die "manifest push $name failed"
	printf '    %-62s sha256:%s\n' "$name" "$(sha256sum "$mfile" | cut -c1-12)"
}

# --- root filesystems -----------------------------------------------------------

busybox_deb() {
	local deb
	deb=$(ls "$OUT"/deb/busybox_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		mkdir -p "$OUT/deb"
		(cd "$OUT/deb" && apt-get download busybox >/dev/null 2>&1) ||
			{ apt-get update -q >/dev/null && (cd "$OUT/deb" && apt-get download busybox); } ||
			die "apt-get download busybox failed"
		deb=$(ls "$OUT"/deb/busybox_*.deb | head -n1)
	fi
	echo "$deb"
}

base_rootfs() { # base_rootfs DIR
	local r=$1 x lib a
	x=$WORK/deb-x
	rm -rf "$x"; mkdir -p "$x"
	dpkg-deb -x "$(busybox_deb)" "$x"
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,dev,proc,sys,run,var/run,var/tmp,home,lib64,lib/x86_64-linux-gnu}
	chmod 1777 "$r/tmp" "$r/var/tmp"; chmod 700 "$r/root"
	install -m 0755 "$x/bin/busybox" "$r/bin/busybox"
	# The libraries busybox links, from the host's Debian 12 libc.
	for lib in $(ldd "$x/bin/busybox" | awk '$3 ~ /^\// {print $3}'); do
		install -m 0755 "$(readlink -f "$lib")" "$r/lib/x86_64-linux-gnu/$(basename "$lib")"
	done
	install -m 0755 "$(readlink -f /lib64/ld-linux-x86-64.so.2)" "$r/lib64/ld-linux-x86-64.so.2"
	for a in $("$x/bin/busybox" --list); do
		[ "$a" = busybox ] || ln "$r/bin/busybox" "$r/bin/$a"
	done
	install -m 0755 "$here/images/pgrep" "$here/images/ipcs" "$r/bin/"
	# The upstream busybox image's users and groups.
	cat >"$r/etc/passwd" <<-'PASSWD'
		root:x:0:0:root:/root:/bin/sh
		daemon:x:1:1:daemon:/usr/sbin:/bin/false
		bin:x:2:2:bin:/bin:/bin/false
		sys:x:3:3:sys:/dev:/bin/false
		sync:x:4:100:sync:/bin:/bin/sync
		mail:x:8:8:mail:/var/spool/mail:/bin/false
		www-data:x:33:33:www-data:/var/www:/bin/false
		operator:x:37:37:Operator:/var:/bin/false
		nobody:x:65534:65534:nobody:/home:/bin/false
	PASSWD
	cat >"$r/etc/group" <<-'GROUP'
		root:x:0:
		daemon:x:1:
		bin:x:2:
		sys:x:3:
		adm:x:4:
		tty:x:5:
		disk:x:6:
		lp:x:7:
		mail:x:8:
		kmem:x:9:
		wheel:x:10:root
		cdrom:x:11:
		dialout:x:18:
		floppy:x:19:
		video:x:26:
		audio:x:29:
		tape:x:32:
		www-data:x:33:
		operator:x:37:
		staff:x:50:
		users:x:100:
		nogroup:x:65534:
	GROUP
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$r/etc/hosts"
	: >"$r/etc/resolv.conf"
}

static_c() { # static_c SOURCE OUT
	gcc -static -O2 -Wall -Werror -o "$2" "$here/images/$1" || die "building $1 failed"
}

# --- main -----------------------------------------------------------------------

command -v gcc >/dev/null || die "gcc missing (make setup)"
curl -fsS -o /dev/null "http://$REGISTRY/v2/" || die "no registry answers on http://$REGISTRY/v2/"
rm -rf "$WORK"
mkdir -p "$blobs"

path_env='["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
base=$WORK/rootfs/base
base_rootfs "$base"
base_layer=$(layer "$base")

# extra NAME: an empty directory for an image's own layer.
extra() { rm -rf "$WORK/rootfs/$1"; mkdir -p "$WORK/rootfs/$1"; echo "$WORK/rootfs/$1"; }

# The nginx stand-in, alone in a layer; PORT (default 80) is where it listens.
nginx_dir=$(extra nginx)
mkdir -p "$nginx_dir"/{usr/sbin,var/run,var/log/nginx,usr/share/nginx/html}
static_c webserver.c "$nginx_dir/usr/sbin/nginx"
echo '<html><body>Welcome to nginx!</body></html>' >"$nginx_dir/usr/share/nginx/html/index.html"
nginx_layer=$(layer "$nginx_dir")

pause_dir=$(extra pause)
static_c pause.c "$pause_dir/pause"
pause_layer=$(layer "$pause_dir")

build_one() { # build_one NAME
	local name=$1 r d cfg
	local repo_path=${name#*/}; repo_path=${repo_path%%[:@]*}
	local base_name=${repo_path##*/}
	case $name in *@sha256:*)
		log "skipped $name: pinned to an upstream digest, cannot be rebuilt offline"; return ;;
	esac
	case $base_name in
	busybox)
		image "$name" "{\"Env\":$path_env,\"Cmd\":[\"sh\"]}" "$base_layer" ;;
	nginx)
		image "$name" "{\"Env\":$path_env,\"Cmd\":[\"nginx\",\"-g\",\"daemon off;\"],\"ExposedPorts\":{\"80/tcp\":{}},\"StopSignal\":\"SIGQUIT\"}" \
			"$base_layer" "$nginx_layer" ;;
	hostnet-nginx-*)
		image "$name" "{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"PORT=12003\"],\"Cmd\":[\"nginx\",\"-g\",\"daemon off;\"],\"StopSignal\":\"SIGQUIT\"}" \
			"$base_layer" "$nginx_layer" ;;
	httpd)
		r=$(extra httpd)
		mkdir -p "$r/usr/local/apache2/htdocs"
		echo '<html><body><h1>It works!</h1></body></html>' >"$r/usr/local/apache2/htdocs/index.html"
		image "$name" "{\"Env\":$path_env,\"Cmd\":[\"sh\",\"-c\",\"echo httpd: serving /usr/local/apache2/htdocs on port 80; exec httpd -f -p 80 -h /usr/local/apache2/htdocs\"],\"StopSignal\":\"SIGKILL\"}" \
			"$base_layer" "$(layer "$r")" ;;
	nonewprivs)
		r=$(extra nonewprivs)
		static_c nonewprivs.c "$r/nnp"
		chmod 4755 "$r/nnp"
		image "$name" "{\"Env\":$path_env,\"Cmd\":[\"/nnp\"]}" "$base_layer" "$(layer "$r")" ;;
	pause)
		image "$name" "{\"Env\":$path_env,\"Entrypoint\":[\"/pause\"]}" "$pause_layer" ;;
	test-image-user-uid) image "$name" "{\"Env\":$path_env,\"Cmd\":[\"sh\"],\"User\":\"1002\"}" "$base_layer" ;;
	test-image-user-username) image "$name" "{\"Env\":$path_env,\"Cmd\":[\"sh\"],\"User\":\"www-data\"}" "$base_layer" ;;
	test-image-user-uid-group) image "$name" "{\"Env\":$path_env,\"Cmd\":[\"sh\"],\"User\":\"1003:1004\"}" "$base_layer" ;;
	test-image-user-username-group) image "$name" "{\"Env\":$path_env,\"Cmd\":[\"sh\"],\"User\":\"www-data:1004\"}" "$base_layer" ;;
	test-image-predefined-group)
		# default-user (uid 1000) belongs to group-defined-in-image (gid 50000).
		r=$(extra predefined-group)
		mkdir -p "$r/etc" "$r/home/default-user"
		cp "$base/etc/passwd" "$base/etc/group" "$r/etc/"
		echo 'default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh' >>"$r/etc/passwd"
		printf 'default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n' >>"$r/etc/group"
		image "$name" "{\"Env\":$path_env,\"Cmd\":[\"sh\"],\"User\":\"1000\"}" "$base_layer" "$(layer "$r")" ;;
	test-image-*)
		# As cri-tools' images/image-test: busybox plus a file named after the
		# repository, so test-image-1, -2, -3 differ and the tags of one
		# repository share one image.
		r=$(extra "$base_name")
		: >"$r/$base_name"
		image "$name" "{\"Env\":$path_env,\"Cmd\":[\"sh\"]}" "$base_layer" "$(layer "$r")" ;;
	*) die "no builder for $name (cri-tools $CRI_TOOLS_VERSION uses it)" ;;
	esac
}

names=$(critest_images)
[ -n "$names" ] || die "no image names found in cri-tools' source"
log "critest $CRI_TOOLS_VERSION pulls $(wc -l <<<"$names") images; pushing to $REGISTRY"
for n in $names; do build_one "$n"; done
# The sandbox image: pause, with a label so that its image differs from the
# pause:3.9 images the specs pull and remove.
image "$SANDBOX_IMAGE" "{\"Env\":$path_env,\"Entrypoint\":[\"/pause\"],\"Labels\":{\"io.railcar.test\":\"sandbox\"}}" "$pause_layer"
printf '%s\n' $names "$SANDBOX_IMAGE" >"$OUT/image-names"
log "done ($(du -sh "$blobs" | cut -f1) of blobs)"
