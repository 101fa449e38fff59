/* posternd --print-nft: a ruleset snippet for the administrator. */
#ifndef POSTERN_PRINT_NFT_H
#define POSTERN_PRINT_NFT_H

#include <stdio.h>

#include "config.h"

void print_nft(FILE *f, const struct server_config *cfg);

#endif
