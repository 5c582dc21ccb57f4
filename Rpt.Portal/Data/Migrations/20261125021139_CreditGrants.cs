using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class CreditGrants : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "expires_at",
                table: "ledger_entries",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "grant_seq",
                table: "ledger_entries",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_ledger_tenant_kind_seq",
                table: "ledger_entries",
                columns: new[] { "tenant_id", "kind", "seq", "period_start", "amount_micro_credits" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_ledger_tenant_kind_seq",
                table: "ledger_entries");

            migrationBuilder.DropColumn(
                name: "expires_at",
                table: "ledger_entries");

            migrationBuilder.DropColumn(
                name: "grant_seq",
                table: "ledger_entries");
        }
    }
}
