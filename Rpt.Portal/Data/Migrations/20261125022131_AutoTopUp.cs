using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class AutoTopUp : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "auto_top_up_attempts",
                columns: table => new
                {
                    key = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    period_start = table.Column<DateOnly>(type: "TEXT", nullable: false),
                    number = table.Column<int>(type: "INTEGER", nullable: false),
                    pack_code = table.Column<string>(type: "TEXT", maxLength: 32, nullable: false),
                    status = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    payment_intent_id = table.Column<string>(type: "TEXT", maxLength: 255, nullable: true),
                    error = table.Column<string>(type: "TEXT", maxLength: 500, nullable: true),
                    created_at = table.Column<long>(type: "INTEGER", nullable: false),
                    completed_at = table.Column<long>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_auto_top_up_attempts", x => x.key);
                });

            migrationBuilder.CreateTable(
                name: "auto_top_ups",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    enabled = table.Column<bool>(type: "INTEGER", nullable: false),
                    threshold_credits = table.Column<long>(type: "INTEGER", nullable: false),
                    pack_code = table.Column<string>(type: "TEXT", maxLength: 32, nullable: false),
                    max_per_period = table.Column<int>(type: "INTEGER", nullable: false),
                    armed = table.Column<bool>(type: "INTEGER", nullable: false),
                    updated_at = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_auto_top_ups", x => x.tenant_id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_auto_top_up_attempts_tenant_id_period_start_number",
                table: "auto_top_up_attempts",
                columns: new[] { "tenant_id", "period_start", "number" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "auto_top_up_attempts");

            migrationBuilder.DropTable(
                name: "auto_top_ups");
        }
    }
}
