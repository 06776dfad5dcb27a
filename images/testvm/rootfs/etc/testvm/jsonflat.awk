# Flatten a JSON document into one "path<TAB>value" line per scalar value,
# e.g. {"uuid": "x", "public_keys": {"k": "ssh-ed25519 AAAA"}, "keys": [{"data": "y"}]}
# gives
#   uuid<TAB>x
#   public_keys.k<TAB>ssh-ed25519 AAAA
#   keys.0.data<TAB>y
# Escapes \" \\ \/ are decoded, \n \r \t become a space, \uXXXX is kept as is.
# Written for busybox awk; whitespace and line breaks anywhere are fine.

function emit(v,    p, l) {
	p = ""
	for (l = 1; l <= depth; l++)
		p = p (l > 1 ? "." : "") (typ[l] == "o" ? key[l] : idx[l])
	print p "\t" v
}

{ s = s $0 "\n" }

END {
	n = length(s); i = 1; depth = 0
	while (i <= n) {
		c = substr(s, i, 1)
		if (c == "{") { depth++; typ[depth] = "o"; key[depth] = ""; want[depth] = 1; i++ }
		else if (c == "[") { depth++; typ[depth] = "a"; idx[depth] = 0; i++ }
		else if (c == "}" || c == "]") { if (depth > 0) depth--; i++ }
		else if (c == ",") { if (typ[depth] == "a") idx[depth]++; else want[depth] = 1; i++ }
		else if (c == ":") { want[depth] = 0; i++ }
		else if (c == "\"") {
			v = ""; i++
			while (i <= n) {
				c = substr(s, i, 1)
				if (c == "\\") {
					d = substr(s, i + 1, 1)
					if (d == "n" || d == "r" || d == "t") v = v " "
					else if (d == "u") v = v "\\u"
					else v = v d
					i += 2
				} else if (c == "\"") { i++; break }
				else { v = v c; i++ }
			}
			if (depth > 0 && typ[depth] == "o" && want[depth]) key[depth] = v
			else emit(v)
		}
		else if (c == " " || c == "\t" || c == "\r" || c == "\n") i++
		else {
			v = ""
			while (i <= n) {
				c = substr(s, i, 1)
				if (c == "," || c == "}" || c == "]" || c == " " || c == "\t" || c == "\r" || c == "\n") break
				v = v c; i++
			}
			emit(v)
		}
	}
}
