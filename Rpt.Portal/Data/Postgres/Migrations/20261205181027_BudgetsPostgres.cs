using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class BudgetsPostgres : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "api_key_id",
                table: "usage_events",
                type: "character varying(36)",
                maxLength: 36,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "project",
                table: "usage_events",
                type: "character varying(128)",
                maxLength: 128,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "project",
                table: "api_keys",
                type: "character varying(128)",
                maxLength: 128,
                nullable: true);

            migrationBuilder.CreateTable(
                name: "budgets",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    tenant_id = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    scope = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    subject = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    micro_credits = table.Column<long>(type: "bigint", nullable: false),
                    window_kind = table.Column<string>(type: "character varying(8)", maxLength: 8, nullable: false),
                    mode = table.Column<string>(type: "character varying(8)", maxLength: 8, nullable: false),
                    alert_at = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    created_at = table.Column<long>(type: "bigint", nullable: false),
                    created_by = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_budgets", x => x.id);
                    table.CheckConstraint("ck_budget_positive", "micro_credits > 0");
                });

            migrationBuilder.CreateTable(
                name: "usage_scopes",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    scope = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    period_start = table.Column<DateOnly>(type: "date", nullable: false),
                    value = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    calls = table.Column<long>(type: "bigint", nullable: false),
                    micro_credits = table.Column<long>(type: "bigint", nullable: false),
                    last_day = table.Column<DateOnly>(type: "date", nullable: false),
                    day_calls = table.Column<long>(type: "bigint", nullable: false),
                    day_micro_credits = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_usage_scopes", x => new { x.tenant_id, x.scope, x.period_start, x.value });
                });

            migrationBuilder.CreateIndex(
                name: "ix_budgets_subject",
                table: "budgets",
                columns: new[] { "tenant_id", "scope", "subject", "window_kind" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "budgets");

            migrationBuilder.DropTable(
                name: "usage_scopes");

            migrationBuilder.DropColumn(
                name: "api_key_id",
                table: "usage_events");

            migrationBuilder.DropColumn(
                name: "project",
                table: "usage_events");

            migrationBuilder.DropColumn(
                name: "project",
                table: "api_keys");
        }
    }
}
