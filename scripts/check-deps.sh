#!/usr/bin/env bash
# Enforces the import rules of STYLE.md §4: the package graph is a DAG with
# formats at the bottom, and only cmd/ may import the CLI libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
status=0
while read -r pkg imports; do
	rel=${pkg#"$mod"}
	for imp in $imports; do
		case "$rel" in
		/cmd/*) ;;
		*)
			case "$imp" in
			github.com/spf13/cobra* | github.com/schollz/progressbar*)
				echo "deps: $pkg imports $imp (only cmd/ may)"; status=1 ;;
			esac ;;
		esac
		case "$rel" in
		/formats | /formats/*)
			case "$imp" in
			"$mod"/quantize* | "$mod"/lora* | "$mod"/train* | "$mod"/cmd* | "$mod"/fixtures*)
				echo "deps: $pkg imports $imp (formats must not)"; status=1 ;;
			esac ;;
		/kernels | /kernels/*)
			case "$imp" in
			"$mod"/quantize* | "$mod"/lora* | "$mod"/train* | "$mod"/cmd* | "$mod"/convert* | "$mod"/tokenizer*)
				echo "deps: $pkg imports $imp (kernels sit below everything but formats)"; status=1 ;;
			esac ;;
		/quantize | /quantize/*)
			case "$imp" in
			"$mod"/lora* | "$mod"/train* | "$mod"/cmd*)
				echo "deps: $pkg imports $imp (quantize must not)"; status=1 ;;
			esac ;;
		esac
	done
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)
exit $status
