using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class HoldsDrawnPostgres : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "drawn_micro_credits",
                table: "credit_reservations",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            // Holds placed before this migration: what their jobs drew of them so far, by the rule that computed it until now
            // (the job's credits since the hold, between 0 and the hold); a released hold keeps what its release recorded.
            migrationBuilder.Sql("""
                UPDATE credit_reservations SET drawn_micro_credits = CASE
                  WHEN released_at IS NOT NULL THEN COALESCE(drawn_at_release_micro_credits, 0)
                  WHEN job_id IS NULL THEN 0
                  ELSE COALESCE((
                    SELECT CASE WHEN j.micro_credits - credit_reservations.job_micro_at_hold <= 0 THEN 0
                                WHEN j.micro_credits - credit_reservations.job_micro_at_hold >= credit_reservations.held_micro_credits THEN credit_reservations.held_micro_credits
                                ELSE j.micro_credits - credit_reservations.job_micro_at_hold END
                    FROM usage_jobs j WHERE j.tenant_id = credit_reservations.tenant_id AND j.job_id = credit_reservations.job_id), 0) END;
                """);
            // The default served the rows above; the model has none (every INSERT names the column).
            migrationBuilder.Sql("ALTER TABLE credit_reservations ALTER COLUMN drawn_micro_credits DROP DEFAULT;");

            migrationBuilder.CreateIndex(
                name: "ix_reservations_tenant_job_unreleased",
                table: "credit_reservations",
                columns: new[] { "tenant_id", "job_id" },
                filter: "released_at IS NULL");

            migrationBuilder.AddCheckConstraint(
                name: "ck_reservation_drawn_within_held",
                table: "credit_reservations",
                sql: "drawn_micro_credits >= 0 AND drawn_micro_credits <= held_micro_credits");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_reservations_tenant_job_unreleased",
                table: "credit_reservations");

            migrationBuilder.DropCheckConstraint(
                name: "ck_reservation_drawn_within_held",
                table: "credit_reservations");

            migrationBuilder.DropColumn(
                name: "drawn_micro_credits",
                table: "credit_reservations");
        }
    }
}
