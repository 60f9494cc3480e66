#!/usr/bin/env bash
# The repository must test on its own: copies HEAD into a fresh temporary folder that holds
# nothing else (so no sibling folder of data is reachable), fails if any source, script or
# manifest refers to the shared folder beside the repository, then runs every test there.
#
#   ci/fresh-clone.sh              # HEAD, as a fresh clone would see it
#   ci/fresh-clone.sh --worktree   # the working tree instead (tracked and untracked files not
#                                  # ignored), to check changes before committing them
#
# The build uses a folder of its own inside the main checkout's target folder
# ($CARGO_TARGET_DIR, else ./target), kept between runs. Set CARGO_BUILD_JOBS to limit
# parallelism.
set -euo pipefail
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

mode=head
case "${1:-}" in
  "") ;;
  --worktree) mode=worktree ;;
  *) echo "usage: ci/fresh-clone.sh [--worktree]" >&2; exit 2 ;;
esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/repo"

if [ "$mode" = head ]; then
  echo "== copy of HEAD ($(git -C "$root" rev-parse --short HEAD)) in $tmp/repo"
  git -C "$root" archive HEAD | tar -x -C "$tmp/repo"
else
  echo "== copy of the working tree in $tmp/repo"
  (cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
    | tar --null -T - -cf -) | tar -x -C "$tmp/repo"
fi

echo "== no reference outside the repository"
cd "$tmp/repo"
if grep -rn '\.\./shared' --include='*.rs' --include='*.sh' --include='*.toml' .; then
  echo "fresh-clone: the files above refer to data outside the repository" >&2
  exit 1
fi

echo "== cargo test --workspace (in the copy)"
# A folder of its own inside the main target folder: the copy has no .git, so its vopr
# reports version "unknown", and sharing target/debug would swap the binaries under tests
# running from the main checkout.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/fresh-clone"
cargo test --workspace --quiet
