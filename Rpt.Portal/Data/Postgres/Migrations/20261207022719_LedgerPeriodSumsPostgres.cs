using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class LedgerPeriodSumsPostgres : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "ledger_period_sums",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    period_start = table.Column<DateOnly>(type: "date", nullable: false),
                    kind = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    micro_credits = table.Column<long>(type: "bigint", nullable: false),
                    entries = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ledger_period_sums", x => new { x.tenant_id, x.period_start, x.kind });
                });

            // The sums of the entries already in the ledger: from here on the appender keeps them in each append's transaction.
            migrationBuilder.Sql("""
                INSERT INTO ledger_period_sums (tenant_id, period_start, kind, micro_credits, entries)
                SELECT tenant_id, period_start, kind, SUM(amount_micro_credits), COUNT(*) FROM ledger_entries
                GROUP BY tenant_id, period_start, kind;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "ledger_period_sums");
        }
    }
}
