import { AppError } from "@tollgate/shared";
import { isMember, overTeamLimits, type Actor } from "../../auth/roles.js";
import type { Db } from "../../db/database.js";
import type { ApiKeySettings } from "../../repositories/api-keys.js";
import { getTeam } from "../../repositories/teams.js";
import { getUser } from "../../repositories/users.js";

/**
 * A member creates keys for themselves only, within what their team allows
 * (tokens per minute and per day). Admins and the master key are not limited here.
 */
export async function checkMemberKeyCreate(
  trx: Db,
  orgId: string,
  actor: Actor,
  userId: string,
  settings: ApiKeySettings,
): Promise<void> {
  if (!isMember(actor)) return;
  if (userId !== actor.id)
    throw new AppError("forbidden", "a member may only create keys for themselves", { field: "user_id" });
  const user = await getUser(trx, orgId, actor.id);
  const team = user?.team_id ? await getTeam(trx, orgId, user.team_id) : undefined;
  const over = overTeamLimits(
    settings,
    team && { tpm_limit: team.tpm_limit, daily_token_limit: team.daily_token_limit },
  );
  if (over) {
    throw new AppError(
      "forbidden",
      `${over.field}: your team allows at most ${over.limit}; ask an organization admin for more`,
      { field: over.field },
    );
  }
}
