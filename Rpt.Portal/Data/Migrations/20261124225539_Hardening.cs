using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class Hardening : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.RenameColumn(
                name: "Data",
                table: "AspNetUserPasskeys",
                newName: "data");

            migrationBuilder.CreateTable(
                name: "flush_lags",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    from_seq = table.Column<long>(type: "INTEGER", nullable: false),
                    error = table.Column<string>(type: "TEXT", maxLength: 500, nullable: false),
                    since = table.Column<long>(type: "INTEGER", nullable: false),
                    last_tried_at = table.Column<long>(type: "INTEGER", nullable: false),
                    attempts = table.Column<int>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_flush_lags", x => x.tenant_id);
                });

            // The initial migration created usage_events.seq with AUTOINCREMENT, which the model (and the
            // ingestion benchmark) had dropped: one more B-tree write per event. SQLite cannot alter a column,
            // so the table is rebuilt with the same rows, indexes and append-only triggers. seq values are
            // kept; without AUTOINCREMENT a new seq is max(seq) + 1, and since rows can never be deleted it
            // still only grows.
            migrationBuilder.Sql("""
                CREATE TABLE "usage_events_rebuilt" (
                    "seq" INTEGER NOT NULL CONSTRAINT "PK_usage_events" PRIMARY KEY,
                    "tenant_id" TEXT NOT NULL,
                    "event_id" TEXT NOT NULL,
                    "occurred_at" INTEGER NOT NULL,
                    "received_at" INTEGER NOT NULL,
                    "period_start" TEXT NOT NULL,
                    "provider" TEXT NOT NULL,
                    "model" TEXT NULL,
                    "meter" TEXT NULL,
                    "quantity" TEXT NULL,
                    "input_tokens" INTEGER NOT NULL,
                    "output_tokens" INTEGER NOT NULL,
                    "cached_input_tokens" INTEGER NOT NULL,
                    "feature" TEXT NULL,
                    "job_id" TEXT NULL,
                    "user_id" TEXT NULL,
                    "status" TEXT NOT NULL,
                    "internal" INTEGER NOT NULL,
                    "billable" INTEGER NOT NULL,
                    "price_id" INTEGER NULL,
                    "rule_id" INTEGER NOT NULL,
                    "cost_usd" TEXT NOT NULL,
                    "micro_credits" INTEGER NOT NULL
                );
                """);
            migrationBuilder.Sql("""
                INSERT INTO usage_events_rebuilt (seq, tenant_id, event_id, occurred_at, received_at, period_start, provider, model, meter,
                  quantity, input_tokens, output_tokens, cached_input_tokens, feature, job_id, user_id, status, internal, billable,
                  price_id, rule_id, cost_usd, micro_credits)
                SELECT seq, tenant_id, event_id, occurred_at, received_at, period_start, provider, model, meter,
                  quantity, input_tokens, output_tokens, cached_input_tokens, feature, job_id, user_id, status, internal, billable,
                  price_id, rule_id, cost_usd, micro_credits FROM usage_events;
                """);
            migrationBuilder.Sql("DROP TABLE usage_events;");
            migrationBuilder.Sql("ALTER TABLE usage_events_rebuilt RENAME TO usage_events;");
            migrationBuilder.Sql("DELETE FROM sqlite_sequence WHERE name IN ('usage_events', 'usage_events_rebuilt');");
            migrationBuilder.Sql("CREATE UNIQUE INDEX \"ux_usage_events_tenant_event\" ON \"usage_events\" (\"tenant_id\", \"event_id\");");
            migrationBuilder.Sql("CREATE INDEX \"ix_usage_events_tenant_job\" ON \"usage_events\" (\"tenant_id\", \"job_id\");");
            migrationBuilder.Sql("CREATE TRIGGER usage_events_no_update BEFORE UPDATE ON usage_events BEGIN SELECT RAISE(ABORT, 'usage_events is append-only: rows cannot be updated'); END;");
            migrationBuilder.Sql("CREATE TRIGGER usage_events_no_delete BEFORE DELETE ON usage_events BEGIN SELECT RAISE(ABORT, 'usage_events is append-only: rows cannot be deleted'); END;");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "flush_lags");

            migrationBuilder.RenameColumn(
                name: "data",
                table: "AspNetUserPasskeys",
                newName: "Data");
        }
    }
}
