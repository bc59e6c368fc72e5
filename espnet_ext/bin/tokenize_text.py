"""ESPnet's ``tokenize_text`` (token lists for stage 5), without ESPnet's import noise.

Same options as ``espnet2.bin.tokenize_text``.
"""

import espnet_ext  # noqa: F401  (quiet nltk before ESPnet imports g2p_en)


def main(cmd=None):
    from espnet2.bin.tokenize_text import main as espnet_main

    espnet_main(cmd)


if __name__ == "__main__":
    main()
