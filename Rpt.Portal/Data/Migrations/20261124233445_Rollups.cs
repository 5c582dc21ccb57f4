using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class Rollups : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "ledger_entry_jobs",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    entry_seq = table.Column<long>(type: "INTEGER", nullable: false),
                    rank = table.Column<int>(type: "INTEGER", nullable: false),
                    job_id = table.Column<string>(type: "TEXT", maxLength: 128, nullable: true),
                    calls = table.Column<long>(type: "INTEGER", nullable: false),
                    micro_credits = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ledger_entry_jobs", x => new { x.tenant_id, x.entry_seq, x.rank });
                });

            migrationBuilder.CreateTable(
                name: "usage_daily",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    day = table.Column<DateOnly>(type: "TEXT", nullable: false),
                    category = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    provider = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    name = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    feature = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    is_meter = table.Column<bool>(type: "INTEGER", nullable: false),
                    calls = table.Column<long>(type: "INTEGER", nullable: false),
                    input_tokens = table.Column<long>(type: "INTEGER", nullable: false),
                    output_tokens = table.Column<long>(type: "INTEGER", nullable: false),
                    cached_input_tokens = table.Column<long>(type: "INTEGER", nullable: false),
                    micro_credits = table.Column<long>(type: "INTEGER", nullable: false),
                    quantity_micro = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_usage_daily", x => new { x.tenant_id, x.day, x.category, x.provider, x.name, x.feature });
                });

            migrationBuilder.CreateTable(
                name: "usage_jobs",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    job_id = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    calls = table.Column<long>(type: "INTEGER", nullable: false),
                    billable_calls = table.Column<long>(type: "INTEGER", nullable: false),
                    input_tokens = table.Column<long>(type: "INTEGER", nullable: false),
                    output_tokens = table.Column<long>(type: "INTEGER", nullable: false),
                    cached_input_tokens = table.Column<long>(type: "INTEGER", nullable: false),
                    micro_credits = table.Column<long>(type: "INTEGER", nullable: false),
                    internal_micro_credits = table.Column<long>(type: "INTEGER", nullable: false),
                    first_at = table.Column<long>(type: "INTEGER", nullable: false),
                    last_at = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_usage_jobs", x => new { x.tenant_id, x.job_id });
                });

            migrationBuilder.CreateIndex(
                name: "ix_usage_events_tenant_seq",
                table: "usage_events",
                column: "tenant_id");

            migrationBuilder.CreateIndex(
                name: "ix_usage_jobs_tenant_first",
                table: "usage_jobs",
                columns: new[] { "tenant_id", "first_at" });

            // Existing audit records get their rollups once; from now on the ingestion writer keeps them.
            migrationBuilder.Sql("""
                INSERT INTO usage_daily (tenant_id, day, category, provider, name, feature, is_meter, calls,
                  input_tokens, output_tokens, cached_input_tokens, micro_credits, quantity_micro)
                SELECT tenant_id, date(occurred_at / 1000, 'unixepoch'),
                  CASE WHEN status = 'failed' THEN 'failed' WHEN internal = 1 THEN 'internal' ELSE 'billable' END,
                  provider, COALESCE(model, meter), COALESCE(feature, ''), meter IS NOT NULL, COUNT(*),
                  SUM(input_tokens), SUM(output_tokens), SUM(cached_input_tokens), SUM(micro_credits),
                  SUM(CASE WHEN quantity IS NULL THEN 0 ELSE CAST(round(CAST(quantity AS REAL) * 1000000) AS INTEGER) END)
                FROM usage_events
                GROUP BY 1, 2, 3, 4, 5, 6;
                """);
            migrationBuilder.Sql("""
                INSERT INTO usage_jobs (tenant_id, job_id, calls, billable_calls, input_tokens, output_tokens, cached_input_tokens,
                  micro_credits, internal_micro_credits, first_at, last_at)
                SELECT tenant_id, job_id, COUNT(*), SUM(billable),
                  SUM(CASE WHEN billable = 1 THEN input_tokens ELSE 0 END), SUM(CASE WHEN billable = 1 THEN output_tokens ELSE 0 END),
                  SUM(CASE WHEN billable = 1 THEN cached_input_tokens ELSE 0 END), SUM(CASE WHEN billable = 1 THEN micro_credits ELSE 0 END),
                  SUM(CASE WHEN internal = 1 AND status <> 'failed' THEN micro_credits ELSE 0 END), MIN(occurred_at), MAX(occurred_at)
                FROM usage_events WHERE job_id IS NOT NULL
                GROUP BY tenant_id, job_id;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "ledger_entry_jobs");

            migrationBuilder.DropTable(
                name: "usage_daily");

            migrationBuilder.DropTable(
                name: "usage_jobs");

            migrationBuilder.DropIndex(
                name: "ix_usage_events_tenant_seq",
                table: "usage_events");
        }
    }
}
