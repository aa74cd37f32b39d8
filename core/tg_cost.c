/*
 * Copyright (C) Tollgate developers
 */


#include "tg_internal.h"


void
tg_cost_profile_default(tg_cost_profile_t *p)
{
    p->base_tokens = TG_COST_BASE_DEFAULT;
    p->bandwidth_tokens = TG_COST_BANDWIDTH_DEFAULT;
    p->quantum_bytes = TG_COST_QUANTUM_DEFAULT;
}


uint64_t
tg_cost_tokens(const tg_cost_profile_t *p, uint64_t body_bytes)
{
    uint64_t  base, quanta, bandwidth;

    base = tg_tokens_clamp(p->base_tokens);

    /* a zero quantum means the profile charges no bandwidth at all */
    if (body_bytes == 0 || p->quantum_bytes == 0
        || p->bandwidth_tokens == 0)
    {
        return base;
    }

    /* ceil() without body_bytes + quantum - 1, which could wrap */
    quanta = body_bytes / p->quantum_bytes
             + (body_bytes % p->quantum_bytes != 0);

    bandwidth = tg_mul_sat(quanta, p->bandwidth_tokens, TG_TOKENS_MAX);

    return tg_tokens_clamp(base + bandwidth);
}
